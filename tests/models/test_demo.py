"""The demo model: its architecture, the saved-model format, and the missing-weights fix."""

from __future__ import annotations

import json

import pytest
import torch

from generator.cache import file_digest
from generator.errors import WeightsError
from generator.models import registry
from generator.models.demo import build_demo_model, load_saved_model, save_model

CPU = torch.device("cpu")
LABELS = [f"shape {i}" for i in range(12)]


def test_demo_architecture_is_small_and_trainable():
    model = build_demo_model(LABELS)
    assert model.input_size == 64 and len(model.labels) == 12
    assert model.layer("mixed4c").channels == 128 and model.layer("mixed4c").size == 4
    assert sum(p.numel() for p in model.parameters()) < 600_000
    model.train()
    logits = model(torch.rand(4, 3, 64, 64))
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(4))
    loss.backward()
    assert model.stages["conv2d0"].conv.weight.grad is not None


def test_missing_demo_weights_say_run_train_demo(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "DEMO_WEIGHTS", tmp_path / "demo.pt")  # as in a fresh clone
    with pytest.raises(WeightsError) as err:
        registry.load_model("demo", device=CPU)
    message = err.value.message()
    assert err.value.exit_code == 2
    assert "atlas train-demo" in message and "demo.pt" in message


def test_save_and_load_round_trip(tmp_path):
    model = build_demo_model(LABELS, seed=4).eval()
    path = tmp_path / "demo.pt"
    facts_path = save_model(model, path, facts={"epochs": 3, "accuracy": 0.9})
    facts = json.loads(facts_path.read_text())
    assert facts["labels"] == LABELS and facts["facts"] == {"epochs": 3, "accuracy": 0.9}
    assert facts["architecture"]["width"] == 0.25 and facts["architecture"]["norm"] == "batch"
    assert facts["layers"][0] == ["conv2d0", 16, 32]
    loaded = registry.load_model("demo", device=CPU, weights=path)
    assert loaded.weights_digest == file_digest(path)
    assert loaded.labels == tuple(LABELS)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(images), model(images))


def test_saved_file_that_does_not_fit_its_architecture(tmp_path):
    model = build_demo_model(LABELS)
    path = tmp_path / "demo.pt"
    save_model(model, path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["stages.logits.fc.weight"] = torch.zeros(5, 256)
    torch.save(payload, path)
    with pytest.raises(WeightsError) as err:
        load_saved_model(path, fix="run `atlas train-demo`")
    assert "stages.logits.fc.weight is [5, 256], expected [12, 256]" in err.value.message()


def test_a_file_in_another_format_is_not_a_saved_model(tmp_path):
    path = tmp_path / "demo.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a saved atlas model"):
        load_saved_model(path)
