"""The benchmark tooling itself: ``make bench`` runs every benchmark, the list of cached weights
finds what it should, and the one-session GPU script runs end to end (on the CPU, tiny)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_make_bench_runs_a_script_that_exists_and_lists_every_benchmark() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^bench:.*\n\t(.+)$", makefile, re.M)
    assert target is not None, "Makefile has no bench target"
    script = re.search(r"(bench/\S+\.py)", target.group(1))
    assert script is not None and (ROOT / script.group(1)).is_file(), target.group(1)
    run_all = load("run_all")
    listed = {b.name for b in run_all.BENCHES}
    tools = {"run_all", "cached_weights", "mutate"}  # not benchmarks themselves
    on_disk = {p.stem for p in BENCH.glob("*.py")} - tools
    assert listed == on_disk, (
        f"bench/run_all.py misses {on_disk - listed}, lists {listed - on_disk}"
    )
    results = (BENCH / "RESULTS.md").read_text()
    for b in run_all.BENCHES:  # each one's command is on record beside its numbers
        assert f"bench/{b.name}.py" in results, f"bench/RESULTS.md never names bench/{b.name}.py"


def test_run_all_list_names_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    run_all = load("run_all")
    assert run_all.main(["--list", "--only", "tiles", "render_gpu"]) == 0
    out = capsys.readouterr().out
    assert "bench/tiles.py" in out and "bench/render_gpu.py --out" in out
    assert "bench/demo.py" not in out


def sparse(path: Path, mb: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(int(mb * 2**20))
    return path


def test_cached_weights_finds_large_weight_files_once_and_flags_inception(tmp_path: Path) -> None:
    cw = load("cached_weights")
    big = sparse(tmp_path / "hub" / "checkpoints" / "googlenet-1378be20.pth", 25)
    sparse(tmp_path / "models" / "resnet.safetensors", 40)
    sparse(tmp_path / "models" / "small.pth", 5)  # under 20 MB
    sparse(tmp_path / "models" / "video.mp4", 50)  # not named like weights
    (tmp_path / "models" / "link.pth").symlink_to(big)  # the same file again
    (tmp_path / "models" / "dangling.pth").symlink_to(tmp_path / "gone.pth")
    files, cut = cw.walk([tmp_path], min_bytes=20 * 2**20, deadline=time.monotonic() + 30)
    assert not cut
    assert [(Path(f.path).name, f.mb, f.inception) for f in files] == [
        ("resnet.safetensors", 40.0, False),
        (big.name, 25.0, True),
    ]
    _, cut = cw.walk([tmp_path], min_bytes=1, deadline=time.monotonic() - 1)
    assert cut


def test_cached_weights_reads_the_torch_hub_and_hugging_face_caches(tmp_path: Path) -> None:
    cw = load("cached_weights")
    home = tmp_path / "home"
    hf = tmp_path / "hf"
    model = hf / "hub" / "models--timm--inception_v3.tv_in1k"
    blob = sparse(model / "blobs" / "0a1b2c", 30)
    snapshot = model / "snapshots" / "abc" / "model.safetensors"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(blob)
    sparse(home / ".cache" / "torch" / "hub" / "checkpoints" / "inception5h.pth", 27)
    env = {"HOME": str(home), "HF_HOME": str(hf)}
    dirs = cw.cache_dirs(env)
    assert dirs == {"torch_hub": home / ".cache" / "torch" / "hub", "huggingface": hf}
    assert cw.hf_models(hf) == {"timm/inception_v3.tv_in1k": 30.0}
    old = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        report = cw.survey([tmp_path], min_mb=20, budget=30)
    finally:
        os.environ.clear()
        os.environ.update(old)
    caches = report["caches"]
    assert caches["torch_hub"]["exists"] and caches["huggingface"]["models"] == {
        "timm/inception_v3.tv_in1k": 30.0
    }
    assert [Path(p).name for p in report["inception_candidates"]] == ["inception5h.pth"]
    text = cw.summary(report)
    assert "inception5h.pth  <- InceptionV1?" in text and "timm/inception_v3.tv_in1k" in text
    json.dumps(report)  # what --out writes


def test_gpu_session_script_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "PY": sys.executable,
        "ATLAS_GPU_SMOKE": "1",
        "ATLAS_WEIGHTS_BUDGET": "5",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu_session.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "collect_scale.txt",
        "gpu-tests.txt",
        "layout_scale.txt",
        "machine.txt",
        "render_gpu.json",
        "render_gpu.txt",
        "weights.json",
    ]
    assert len(names) <= 8  # what the device tool brings back (ray_render.txt where Ray is)
    assert "weight files >= 20.0 MB: " in (out / "machine.txt").read_text()
    scale = (out / "collect_scale.txt").read_text()
    line = r"collect_scale images=48 layers=mixed4c device=cpu seconds=[\d.]+ images_per_s=[\d.]+"
    assert re.search(rf"^{line} est_1m_s=\d+ peak_rss_gb=[\d.]+$", scale, re.M), scale[-2000:]
    figures = json.loads(scale[scale.index("\n{\n") : scale.index("\n}\n") + 2])
    assert figures["rows"] == {"mixed4c": 48} and figures["classes"] == 1008  # Lucid's logits
    assert figures["generate"]["files"] == 48 and figures["goal"]["met"] is False
    layouts = (out / "layout_scale.txt").read_text()
    for backend in ("cuml", "torchdr"):  # run where installed, reported where not
        if importlib.util.find_spec(backend) is None:
            assert f"layout {backend}: package {backend} not installed here, skipped" in layouts
        else:
            assert f"layout n=400 dim=16 backend={backend} seconds=" in layouts
    result = json.loads((out / "render_gpu.json").read_text())
    assert result["device"] == "cpu" and result["atlas"]["icons"] == 16
    assert result["sweep"] and all(r["step_ms"] > 0 for r in result["sweep"])
    assert "skipped" in (out / "gpu-tests.txt").read_text()  # no CUDA here: skipped, not failed
    assert json.loads((out / "weights.json").read_text())["min_mb"] == 20.0


def test_layout_scale_prints_its_result_line_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("layout_scale")
    out = tmp_path / "layout.json"
    argv = ["--n", "600", "--dim", "16", "--backend", "landmarks", "--landmarks", "200"]
    assert bench.main([*argv, "--n-neighbors", "15", "--warm-up", "--json", str(out)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(
        r"layout n=600 dim=16 backend=landmarks seconds=([\d.]+) peak_rss_gb=([\d.]+) "
        r"trustworthiness=([\d.]+)",
        last,
    )
    assert match, last
    result = json.loads(out.read_text())
    assert result["landmarks"] == 200 and result["params"]["backend"] == "landmarks"
    assert float(match.group(2)) > 0 and result["trustworthiness"] > 0.9  # PCA: 0.83 at 3,000
    vectors, labels = bench.mixture(600, 16)
    again, _ = bench.mixture(600, 16)
    np.testing.assert_array_equal(vectors, again)  # seeded data
    assert vectors.min() >= 0 and len(np.unique(labels)) == 50


def test_collect_scale_writes_seeded_jpegs_the_folder_source_reads_by_class(
    tmp_path: Path,
) -> None:
    from generator.data.folder import FolderSource

    bench = load("collect_scale")
    made = bench.make_images(tmp_path / "a", 7, side=40, classes=3, seed=5, processes=2)
    assert made["files"] == 7 and made["mean_kb"] > 0
    source = FolderSource(tmp_path / "a")
    assert len(source) == 7
    assert source.read(6).shape == (40, 40, 3) and source.read(6).std() > 5  # not a flat image
    assert source.labels().tolist() == [0, 0, 0, 1, 1, 2, 2]  # images k % 3, by folder
    bench.make_images(tmp_path / "b", 7, side=40, classes=3, seed=5, processes=1)
    files = sorted((tmp_path / "a").rglob("*.jpg"))
    again = sorted((tmp_path / "b").rglob("*.jpg"))
    assert [p.read_bytes() for p in files] == [p.read_bytes() for p in again]
    assert bench.image_bytes(0, 40, seed=6) != (tmp_path / "a/class000/0000000.jpg").read_bytes()
