"""Weights downloads: checksum, validation before the rename, nothing left behind on failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from generator.errors import WeightsError
from generator.models import registry
from generator.models.fetch import download
from generator.models.formats import export_state_dict
from generator.models.inception import LUCID, build_inceptionv1
from generator.models.model_spec import WeightSource, parse_model_spec


def served(path: Path, **checks: str) -> WeightSource:
    """A source whose address is a local file (urllib reads file:// like http://)."""
    return WeightSource(url=path.as_uri(), filename=path.name, **checks)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_checks_the_sha256_prefix(tmp_path):
    payload = tmp_path / "src" / "weights-x.pth"
    payload.parent.mkdir()
    payload.write_bytes(b"tensor bytes" * 1000)
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    dest = tmp_path / "dest" / "weights-x.pth"
    assert download(served(payload, sha256_prefix=digest[:8]), dest, progress=None) == dest
    assert dest.read_bytes() == payload.read_bytes()
    assert leftovers(dest.parent) == ["weights-x.pth"]


@pytest.mark.parametrize("check", [{"sha256_prefix": "00000000"}, {"sha256": "ab" * 32}])
def test_a_checksum_mismatch_leaves_nothing(tmp_path, check):
    payload = tmp_path / "w.pth"
    payload.write_bytes(b"something else")
    dest = tmp_path / "dest" / "w.pth"
    with pytest.raises(WeightsError) as err:
        download(served(payload, **check), dest, progress=None)
    assert "checksum mismatch" in err.value.message()
    assert hashlib.sha256(b"something else").hexdigest() in err.value.message()
    assert leftovers(dest.parent) == []


def test_offline_is_a_clear_error(tmp_path):
    source = WeightSource(url="http://127.0.0.1:9/inception5h.pth", filename="inception5h.pth")
    with pytest.raises(WeightsError) as err:
        download(source, tmp_path / "inception5h.pth", progress=None, timeout=5)
    message = err.value.message()
    assert "could not download" in message and "needs internet" in message
    assert str(tmp_path / "inception5h.pth") in message  # where to put a hand download
    assert leftovers(tmp_path) == []


def test_fetch_inceptionv1_validates_keys_and_writes_to_the_lookup_place(
    tmp_path, monkeypatch, weights_env
):
    good = tmp_path / "published" / "inception5h.pth"
    good.parent.mkdir()
    torch.save(export_state_dict(build_inceptionv1(LUCID, seed=2), "lucid"), good)
    monkeypatch.setattr(registry, "LUCID_SOURCE", served(good))
    spec = parse_model_spec("inceptionv1")
    path, downloaded = registry.fetch_model_weights(spec)
    assert downloaded and path == weights_env / "hub" / "checkpoints" / "inception5h.pth"
    assert registry.locate_weights(spec) == path
    assert registry.fetch_model_weights(spec) == (path, False)  # already there: kept

    monkeypatch.setenv("ATLAS_WEIGHTS_DIR", str(tmp_path / "mine"))
    wrong = tmp_path / "published" / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    monkeypatch.setattr(registry, "LUCID_SOURCE", served(wrong))
    with pytest.raises(WeightsError) as err:
        registry.fetch_model_weights(spec)
    assert "1 unexpected: conv.weight [3]" in err.value.message()
    assert leftovers(tmp_path / "mine") == []


def test_models_without_published_weights():
    with pytest.raises(WeightsError, match="atlas train-demo"):
        registry.fetch_model_weights(parse_model_spec("demo"))
