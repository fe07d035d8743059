"""Training the demo model: reproducible by seed, learns, respects its time budget, and
``atlas train-demo`` writes a model that loads. Tiny settings (narrow network, few small
batches, one thread) keep each run to a second or two."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
import torch

from generator.cli import main
from generator.data.world import CLASS_NAMES, labels_of
from generator.models import registry
from generator.models.train import learning_rate, train_demo
from generator.models.train_data import training_batches, world_batch
from generator.models.train_settings import (
    TEST_START,
    TRAIN_SPAN,
    VALIDATION_START,
    TrainSettings,
    train_start,
)

CPU = torch.device("cpu")

#: A run small enough for the unit tests: 0.1 width (the stem has 6 channels), 16 images.
TINY = dict(
    width=0.1, batch_size=16, threads=1, lr=1e-2, val_every=5, val_images=24, final_val_images=48
)


@pytest.fixture(autouse=True)
def keep_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_same_seed_same_weights_and_the_loss_falls():
    first = train_demo(TrainSettings(steps=16, **TINY), stream=None)
    again = train_demo(TrainSettings(steps=16, prefetch=False, **TINY), stream=None)
    state, state_again = first.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(state[k], state_again[k]) for k in state)
    assert first.losses == again.losses and first.facts["validation"] == again.facts["validation"]
    # From about ln(12) = 2.48 at random initialisation.
    assert sum(first.losses[-4:]) / 4 < sum(first.losses[:4]) / 4 - 0.1
    other = train_demo(TrainSettings(steps=2, seed=1, **TINY), stream=None)
    assert not torch.equal(
        other.model.stages["conv2d0"].conv.weight, state["stages.conv2d0.conv.weight"]
    )


def test_facts_record_the_run():
    result = train_demo(TrainSettings(steps=10, **TINY), stream=None)
    facts = result.facts
    assert facts["steps"] == 10 and facts["images_seen"] == 160 and facts["stopped"] == "steps"
    assert facts["world"]["train_indices"] == [train_start(0), train_start(0) + 160]
    assert facts["validation"]["indices"] == [VALIDATION_START, VALIDATION_START + 48]
    assert facts["history"] == [[5, result.history[0][1]]]
    assert facts["threads"] == 1 and facts["torch"] == torch.__version__
    assert facts["settings"]["seed"] == 0 and facts["train_seconds"] > 0
    json.dumps(facts)  # JSON-able as is
    assert not result.model.training
    assert result.model.stages["conv2d0"].conv.weight.is_contiguous()


def test_progress_lines_on_the_stream(capsys):
    import sys

    train_demo(TrainSettings(steps=5, **TINY), stream=sys.stderr, log_every=0)
    err = capsys.readouterr().err
    assert "train-demo: width 0.1, 64 px, 5 steps of 16 images, 1 threads, seed 0" in err
    assert "step 5/5  loss " in err and "img/s" in err and "ETA" in err
    assert "validation accuracy" in err


def test_time_budget_shortens_the_schedule():
    # A fake clock: every reading is one "second" later, so the pace is a few seconds a step.
    ticks = itertools.count()
    settings = TrainSettings(steps=200, time_budget_s=60, val_every=0, **{
        k: v for k, v in TINY.items() if k != "val_every"
    })  # fmt: skip
    facts = train_demo(settings, stream=None, clock=lambda: float(next(ticks))).facts
    assert facts["stopped"].startswith("time budget")
    assert 10 <= facts["steps"] < 60 and facts["planned_steps"] == 200
    assert facts["scheduled_steps"] <= facts["steps"] + 1
    assert facts["train_seconds"] <= 60  # the final validation fitted in the budget too


def test_learning_rate_warms_up_then_anneals_to_zero():
    rates = [learning_rate(step, 100, 1.0) for step in range(100)]
    assert rates[0] == pytest.approx(0.2) and rates[4] == pytest.approx(1.0)  # 5 warm-up steps
    assert all(a >= b for a, b in itertools.pairwise(rates[4:]))
    assert learning_rate(100, 100, 1.0) == pytest.approx(0.0)


def test_index_ranges_are_disjoint_and_batches_are_the_world():
    ranges = [(0, VALIDATION_START), (VALIDATION_START, TEST_START), (TEST_START, TRAIN_SPAN)]
    ranges += [(train_start(s), train_start(s) + TRAIN_SPAN) for s in (0, 1, 2)]
    for earlier, later in itertools.pairwise(sorted(ranges)):
        assert earlier[1] <= later[0]
    images, labels = world_batch(TEST_START, 24, size=32)
    assert images.shape == (24, 3, 32, 32) and images.dtype == torch.uint8
    assert sorted(labels.tolist()) == sorted(labels_of(list(range(TEST_START, TEST_START + 24)), 0))
    first, second = itertools.islice(training_batches(3, 8, 5, size=32), 2)
    assert torch.equal(second[0], world_batch(train_start(3) + 8, 8, size=32)[0])
    assert not torch.equal(first[0], second[0])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="seed"):
        TrainSettings(seed=-1)
    with pytest.raises(ValueError, match="steps"):
        TrainSettings(steps=0)
    with pytest.raises(ValueError, match="width"):
        TrainSettings(width=0)


def test_cli_writes_a_model_that_loads(tmp_path):
    out = tmp_path / "tiny.pt"
    args = ["train-demo", "--steps", "3", "--batch-size", "8", "--width", "0.1", "--threads", "1"]
    args += ["--val-images", "24", "--target", "0", "--out", str(out)]
    assert main(args) == 0
    model = registry.load_model("demo", device=CPU, weights=out)
    assert model.labels == CLASS_NAMES and model.input_size == 64
    facts = json.loads(out.with_suffix(".json").read_text())
    assert facts["facts"]["steps"] == 3 and facts["architecture"]["width"] == 0.1
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 12)


def test_cli_refuses_to_save_below_target(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    args = ["train-demo", "--steps", "2", "--batch-size", "8", "--width", "0.1", "--threads", "1"]
    args += ["--val-images", "24", "--target", "0.99", "--out", str(out)]
    assert main(args) == 1
    assert not out.exists() and not out.with_suffix(".json").exists()
    err = capsys.readouterr().err
    assert "below the target; nothing was written" in err and "--steps" in err


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["train-demo", "--out", str(tmp_path / "model.bin")]) == 2
    assert main(["train-demo", "--seed", "-3", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "a path ending in .pt" in err and "seed must be in" in err
