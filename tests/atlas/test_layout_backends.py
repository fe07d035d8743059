"""Layout back ends: auto's choice, the errors of impossible requests, the spec keys, the GPU
back ends' argument mapping, and the landmarks back end (and torchdr, where installed) on real
data: seeded, and close to full UMAP."""

from __future__ import annotations

import importlib.util
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from generator.atlas import landmarks as landmarks_module
from generator.atlas.landmarks import (
    choose_landmarks,
    nearest,
    place,
    placement_weights,
)
from generator.atlas.layout import LayoutParams, compute_layout, exact_neighbors
from generator.atlas.layout_backends import (
    AUTO_LANDMARKS_ABOVE,
    BACKENDS,
    UMAP_LEARN,
    BackendSettings,
    LayoutBackend,
    choose_backend,
    cuml_arguments,
    resolve_backend,
    torchdr_arguments,
)
from generator.atlas.spec import SpecProblems, parse_computed_atlas
from generator.errors import AtlasError, SetupError

#: Trustworthiness (k = 15) the landmarks back end must reach on the 3,000 vectors of
#: :func:`test_landmarks_layout_is_seeded_and_close_to_full_umap` with 1,000 landmarks, and
#: how far below full UMAP's it may be: measured 0.992 against 0.995 (a PCA projection: 0.911).
#: bench/RESULTS.md, "Layout at scale", chose the auto threshold from the same measure.
LANDMARKS_TRUST_MIN = 0.98
LANDMARKS_TRUST_BELOW_FULL = 0.01


def mixture(n: int, dim: int = 32, clusters: int = 12, seed: int = 0) -> np.ndarray:
    """Non-negative vectors around ``clusters`` centres, each cluster spread along 3 random
    directions of its own (local structure for trustworthiness to see)."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, (clusters, dim))
    spread = rng.normal(0.0, 0.4, (clusters, 3, dim))
    labels = rng.integers(0, clusters, n)
    z = rng.standard_normal((n, 3))
    x = centres[labels] + np.einsum("nk,nkd->nd", z, spread[labels])
    return np.maximum(x + rng.normal(0.0, 0.05, (n, dim)), 0).astype(np.float32)


# -- choosing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "installed", "n", "expected"),
    [
        ("cpu", (), 1_000, "umap-learn"),
        ("cpu", (), AUTO_LANDMARKS_ABOVE, "umap-learn"),
        ("cpu", (), AUTO_LANDMARKS_ABOVE + 1, "landmarks"),
        ("cpu", ("cuml", "torchdr"), 10**6, "landmarks"),  # GPU packages need a GPU
        ("cuda", ("cuml", "torchdr"), 1_000, "cuml"),
        ("cuda", ("torchdr",), 1_000, "torchdr"),
        ("cuda", (), 1_000, "umap-learn"),
        ("cuda", (), 10**6, "landmarks"),
    ],
)
def test_auto_picks_by_device_installed_packages_and_size(
    device: str, installed: tuple[str, ...], n: int, expected: str
) -> None:
    assert choose_backend("auto", device=device, installed=installed, n=n) == expected


def test_auto_keeps_umap_learn_for_a_metric_the_landmarks_lack() -> None:
    for metric, expected in (("euclidean", "landmarks"), ("correlation", "umap-learn")):
        chosen = choose_backend("auto", device="cpu", installed=(), n=10**6, metric=metric)
        assert chosen == expected
    with pytest.raises(AtlasError, match="no metric 'correlation'") as err:
        choose_backend("landmarks", device="cpu", installed=(), n=10, metric="correlation")
    assert err.value.where == "layout.metric" and "umap-learn" in str(err.value.fix)


def test_explicit_back_ends_are_kept_or_refused_with_the_fix() -> None:
    for name in ("umap-learn", "landmarks"):
        assert choose_backend(name, device="cpu", installed=(), n=10) == name
    assert choose_backend("torchdr", device="cpu", installed=("torchdr",), n=10) == "torchdr"
    assert choose_backend("cuml", device="cuda", installed=("cuml",), n=10) == "cuml"
    with pytest.raises(SetupError) as missing:
        choose_backend("cuml", device="cuda", installed=("torchdr",), n=10)
    assert "'cuml' package" in missing.value.what and "atlas[cuml]" in str(missing.value.fix)
    with pytest.raises(SetupError, match=r"atlas\[gpu-layout\]"):
        choose_backend("torchdr", device="cuda", installed=(), n=10)
    with pytest.raises(AtlasError, match="CUDA device only") as off_gpu:
        choose_backend("cuml", device="cpu", installed=("cuml",), n=10)
    assert not isinstance(off_gpu.value, SetupError)
    with pytest.raises(AtlasError, match="unknown layout back end 'rapids'") as unknown:
        choose_backend("rapids", device="cpu", installed=(), n=10)
    assert unknown.value.expected == " | ".join(f'"{b}"' for b in BACKENDS)


def test_resolving_settings_and_what_each_back_end_adds_to_keys() -> None:
    small = resolve_backend(BackendSettings(), device="cpu", n=100, installed=())
    assert small == UMAP_LEARN and small.key_parts() == {} and small.facts() == {}
    tsne = resolve_backend(
        BackendSettings("landmarks"), device="cpu", n=10**6, method="tsne", installed=()
    )
    assert tsne == UMAP_LEARN
    big = resolve_backend(BackendSettings(landmarks=5000), device="cpu", n=10**6, installed=())
    assert big == LayoutBackend("landmarks", "cpu", 5000)
    assert big.key_parts()["backend"]["landmarks"] == 5000
    assert big.facts() == {"backend": "landmarks", "landmarks": 5000}
    gpu = resolve_backend(BackendSettings(), device="cuda", n=10, installed=("torchdr",))
    assert gpu.key_parts() == {"backend": {"name": "torchdr", "device": "cuda"}}


# -- the spec keys -----------------------------------------------------------------------------

MINIMAL = {"model": "demo", "layer": "mixed4c", "dataset": "shapes"}


def test_spec_keys_choose_the_back_end_and_stay_out_of_default_descriptions() -> None:
    default = parse_computed_atlas("a", MINIMAL, "atlases.toml:1")
    assert default.layout_backend == BackendSettings()
    assert "layout_backend" not in default.described()
    chosen = parse_computed_atlas(
        "a", {**MINIMAL, "layout": {"backend": "landmarks", "landmarks": 5000}}, "atlases.toml:1"
    )
    assert chosen.layout_backend == BackendSettings("landmarks", 5000)
    assert chosen.layout == default.layout  # the UMAP settings are untouched
    assert chosen.described()["layout_backend"] == {"backend": "landmarks", "landmarks": 5000}


def test_bad_back_end_keys_are_reported_with_the_choices() -> None:
    with pytest.raises(SpecProblems) as err:
        parse_computed_atlas(
            "a", {**MINIMAL, "layout": {"backend": "gpu", "landmarks": 10}}, "atlases.toml:3"
        )
    text = str(err.value)
    assert 'layout.backend = \'gpu\': expected "auto" | "umap-learn" | "landmarks"' in text
    assert '"cuml" | "torchdr"' in text
    assert "layout.landmarks = 10: expected an integer >= 100" in text


# -- the GPU back ends' arguments --------------------------------------------------------------


def test_gpu_back_ends_get_the_articles_settings_and_the_seed() -> None:
    params = LayoutParams(n_neighbors=20, min_dist=0.01, metric="euclidean")
    cuml = cuml_arguments(params, 2, seed=7)
    assert (cuml["n_neighbors"], cuml["min_dist"], cuml["metric"]) == (20, 0.01, "euclidean")
    assert cuml["random_state"] == 7 and cuml["n_components"] == 2
    assert cuml["output_type"] == "numpy" and cuml["init"] == "spectral"
    torchdr = torchdr_arguments(params, 2, seed=7, device="cuda")
    assert (torchdr["n_neighbors"], torchdr["min_dist"]) == (20, 0.01)
    assert torchdr["random_state"] == 7 and torchdr["device"] == "cuda"
    assert torchdr["backend"] is None  # our exact neighbours, not its N x N matrix


def test_asking_for_cuml_without_it_fails_before_computing() -> None:
    if importlib.util.find_spec("cuml") is not None:
        pytest.skip("cuml is installed here")
    with pytest.raises(SetupError, match="'cuml' package"):
        resolve_backend(BackendSettings("cuml"), device="cuda", n=10)


# -- the landmarks back end --------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_nearest_agrees_with_the_exact_float64_neighbours(metric: str) -> None:
    x = mixture(600, dim=16)
    ours, dist = nearest(x, x, 8, metric, same=True)
    theirs, their_dist = exact_neighbors(x, 8, metric)  # type: ignore[misc]
    assert (ours[:, 0] == np.arange(600)).all() and (dist[:, 0] == 0).all()
    same_sets = np.mean([set(a) == set(b) for a, b in zip(ours, theirs, strict=True)])
    assert same_sets > 0.99  # float32 rounding may swap near-ties
    np.testing.assert_allclose(dist, their_dist, atol=1e-4)
    queries = x[:50] + 0.01
    idx, dist = nearest(queries, x[100:], 3, metric)
    brute = cdist(queries.astype(np.float64), x[100:].astype(np.float64), metric=metric)
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :3], atol=1e-4)
    assert np.mean(idx == np.argsort(brute, axis=1)[:, :3]) > 0.98


def test_placement_is_a_membership_weighted_mean_of_landmark_positions() -> None:
    distances = np.array([[0.1, 0.2, 0.4], [0.0, 0.0, 0.0]], dtype=np.float32)
    weights = placement_weights(distances)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert weights[0, 0] > weights[0, 1] > weights[0, 2]  # nearer weighs more
    np.testing.assert_allclose(weights[1], 1 / 3)  # ties weigh the same
    positions = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    placed = place(np.array([[0, 1, 2], [2, 1, 0]]), weights, positions)
    np.testing.assert_allclose(placed[0], weights[0] @ positions)
    np.testing.assert_allclose(placed[1], [1 / 3, 1 / 3])


def test_landmarks_are_a_seeded_sorted_subset() -> None:
    a = choose_landmarks(1000, 100, seed=3)
    assert len(a) == 100 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, choose_landmarks(1000, 100, seed=3))
    assert not np.array_equal(a, choose_landmarks(1000, 100, seed=4))
    np.testing.assert_array_equal(choose_landmarks(50, 100, seed=3), np.arange(50))


def trust(x: np.ndarray, xy: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(x, xy, n_neighbors=15, metric="cosine"))


def test_landmarks_layout_is_seeded_and_close_to_full_umap() -> None:
    x = mixture(3000)
    params = LayoutParams(n_neighbors=15, min_dist=0.05, metric="cosine")
    backend = LayoutBackend("landmarks", landmarks=1000)
    a = compute_layout(x, params, seed=0, backend=backend)
    b = compute_layout(x, params, seed=0, backend=backend)
    c = compute_layout(x, params, seed=1, backend=backend)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert not np.array_equal(a.xy, c.xy)
    assert a.params["backend"] == "landmarks" and a.params["landmarks"] == 1000
    full = compute_layout(x, params, seed=0)
    assert "backend" not in full.params
    ours, theirs = trust(x, a.xy), trust(x, full.xy)
    assert ours >= LANDMARKS_TRUST_MIN, (ours, theirs)
    assert ours >= theirs - LANDMARKS_TRUST_BELOW_FULL, (ours, theirs)


def float16_map(tmp_path: Path, x: np.ndarray) -> np.ndarray:
    """``x`` stored as the cache stores activations (a float16 ``.npy``), memory-mapped."""
    np.save(tmp_path / "vectors.npy", x.astype(np.float16))
    return np.load(tmp_path / "vectors.npy", mmap_mode="r")


def test_landmarks_stream_a_float16_memory_map_to_the_layout_of_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout of a float16 memory map, read in blocks of 700 rows, is the layout of the
    same values held whole in float32 (the blocks change nothing)."""
    stored = float16_map(tmp_path, mixture(3000))
    params = LayoutParams(n_neighbors=15, min_dist=0.05, metric="cosine")
    backend = LayoutBackend("landmarks", landmarks=500)
    whole = compute_layout(np.array(stored, dtype=np.float32), params, seed=0, backend=backend)
    monkeypatch.setattr(landmarks_module, "PLACE_ROWS", 700)  # 4 blocks of the 2,500 placed
    streamed = compute_layout(stored, params, seed=0, backend=backend)
    np.testing.assert_array_equal(streamed.xy, whole.xy)


def test_landmarks_never_copy_the_vectors_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laying out 60,000 x 64 float16 vectors (a float32 copy: 15 MB) holds a few MB of
    numpy memory: the landmarks, one block and the [N, 2] result (tracemalloc counts numpy's
    allocations)."""
    stored = float16_map(tmp_path, mixture(60_000, dim=64))
    whole_copy = stored.shape[0] * stored.shape[1] * 4
    monkeypatch.setattr(landmarks_module, "PLACE_ROWS", 4096)
    params = LayoutParams(n_neighbors=15, min_dist=0.05, metric="cosine")
    tracemalloc.start()
    try:
        layout = compute_layout(
            stored, params, seed=0, backend=LayoutBackend("landmarks", landmarks=300)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layout.xy.shape == (60_000, 2) and np.isfinite(layout.xy).all()
    assert peak < whole_copy / 2, (peak, whole_copy)


def test_landmarks_lay_out_duplicates_and_refuse_too_few_distinct(tmp_path: Path) -> None:
    base = mixture(400, dim=16)
    x = base[np.random.default_rng(0).integers(0, 400, 2000)]  # every row 5 times on average
    params = LayoutParams(n_neighbors=15, min_dist=0.05, metric="cosine")
    backend = LayoutBackend("landmarks", landmarks=600)
    layout = compute_layout(float16_map(tmp_path, x), params, seed=0, backend=backend)
    chosen = choose_landmarks(2000, 600, seed=0)
    _, first = np.unique(x[chosen], axis=0, return_inverse=True)
    first = first.reshape(-1)
    for group in range(first.max() + 1):  # identical landmarks share one point
        members = layout.xy[chosen[first == group]]
        assert (members == members[0]).all()
    assert np.isfinite(layout.xy).all() and layout.xy.min() >= 0 and layout.xy.max() <= 1
    flat = np.repeat(base[:3], 1000, axis=0)  # 3 distinct vectors in 3,000 rows
    with pytest.raises(AtlasError, match="too few distinct") as err:
        compute_layout(flat, params, seed=0, backend=backend)
    assert "3 distinct of 3000 samples among the 600 landmarks drawn" in str(err.value)


def test_torchdr_layout_is_seeded_on_the_cpu_and_keeps_global_generators() -> None:
    pytest.importorskip("torchdr")
    import torch

    x = mixture(300, dim=16)
    params = LayoutParams(n_neighbors=15, min_dist=0.05, metric="cosine")
    backend = LayoutBackend("torchdr", device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 1,000 tiny steps: 13 s on one thread, 120 s on two of a busy machine
    try:
        check_torchdr(x, params, backend)
    finally:
        torch.set_num_threads(threads)


def check_torchdr(x: np.ndarray, params: LayoutParams, backend: LayoutBackend) -> None:
    import torch

    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    a = compute_layout(x, params, seed=0, backend=backend)
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    expected = (torch.rand(1).item(), np.random.rand(), random.random())
    assert after == expected  # torchdr's seed_everything did not leak out
    b = compute_layout(x, params, seed=0, backend=backend)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert a.params["backend"] == "torchdr"
    assert trust(x, a.xy) > 0.9
