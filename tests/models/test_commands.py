"""``atlas models`` and ``atlas weights fetch`` through their argument parsers."""

from __future__ import annotations

import argparse
import json

import pytest

from generator.errors import AtlasError
from generator.models import commands


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="atlas")
    parser.add_argument("--config", default=None)
    sub = parser.add_subparsers(dest="command")
    commands.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AtlasError as err:
        print(f"error: {err.message()}")
        return err.exit_code


@pytest.fixture(autouse=True)
def no_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no atlas.toml here or above: built-in models only


def test_models_lists_layers_and_weight_status(capsys):
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    assert "inceptionv1  (Lucid's InceptionV1" in out
    assert "input 224 px, 1008 classes; weights: missing" in out
    assert "fix: run `atlas weights fetch inceptionv1`" in out
    assert "  mixed4a         508  14x14" in out
    assert "  mixed4a         512  14x14" in out  # googlenet
    assert "weights: downloads on first use" in out
    assert "input 64 px, 12 classes; weights: found" in out  # the committed demo weights


def test_models_json_and_found_weights(capsys, weights_env):
    target = weights_env / "hub" / "checkpoints" / "inception5h.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placeholder")
    assert run(["models", "inceptionv1", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["status"] == "found" and entry["weights"] == str(target)
    assert ["mixed5b", 1024, 7] in entry["layers"]


def test_models_of_a_project(tmp_path, capsys):
    (tmp_path / "atlas.toml").write_text(
        '[site]\ntitle = "t"\nsite_url = "https://example.org/t/"\n'
        '[models.small-resnet]\ntorchvision = "resnet18"\nweights = "random"\ninput_size = 64\n'
    )
    assert run(["models", "small-resnet"]) == 0
    out = capsys.readouterr().out
    assert "small-resnet  (torchvision resnet18)" in out
    assert "weights: random" in out and "  layer3          256  4x4" in out


def test_fetch_of_a_model_without_published_weights_exits_2(capsys):
    assert run(["weights", "fetch", "demo"]) == 2
    assert "atlas train-demo" in capsys.readouterr().out


def test_unknown_model_exits_2(capsys):
    assert run(["weights", "fetch", "inceptionv3"]) == 2
    assert "did you mean 'inceptionv1'" in capsys.readouterr().out
