"""Training the demo model from scratch on the synthetic world, on a CPU, in minutes.

:func:`train_demo` is the method, top-down: build the model from the seed, stream fresh images
(:mod:`generator.models.train_data`), take ``steps`` optimizer steps with a warm-up + cosine
learning rate, validate every so often on a disjoint range, and hand back the model with the
facts that go beside its weights. ``atlas train-demo`` (:mod:`generator.models.train_commands`)
saves them.

The recipe (:class:`TrainSettings` defaults), for a from-scratch run of a few hundred thousand
images on two cores:

* AdamW (decoupled weight decay on convolution and linear weights only; batch-norm scales and
  biases are not decayed, so no channel is pushed to zero and features stay spread out),
* linear warm-up over the first :data:`WARMUP_FRACTION` of the steps, then a cosine to zero,
* label smoothing 0.1 (Szegedy et al. 2016, "Rethinking the Inception architecture"),
* the model's own dropout (0.2 before the classifier) and batch norm,
* no extra augmentation: the world's nuisances (position, scale, rotation, colours, clutter,
  lighting) already vary every image, and no image is seen twice.

Reproducible by seed: the initial weights, the dropout masks (a forked, seeded global generator
restored afterwards) and the image stream all follow from ``seed``, so two runs with the same
settings and thread count produce the same weights, unless the time budget cut one short
(``facts["stopped"]`` says so).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from generator.data.world import CLASS_NAMES, WORLD_VERSION
from generator.models.demo import DEMO_INPUT_SIZE, DEMO_WIDTH, build_demo_model
from generator.models.inception import InceptionV1, seeded
from generator.models.train_data import to_float, training_batches, world_batch
from generator.models.train_settings import (
    DEMO_WORLD_SEED,
    VALIDATION_START,
    TrainSettings,
    train_start,
)

#: Fraction of the steps spent warming the learning rate up linearly from zero.
WARMUP_FRACTION = 0.05

#: Images per forward pass when evaluating (memory, not results: eval mode is per image).
EVAL_BATCH = 500


@dataclass
class TrainResult:
    """A trained model (eval mode, on the CPU) and what happened.

    Attributes:
        model: the network, contiguous memory format, ready for :func:`save_model`.
        facts: JSON-able record of the run (settings, steps, images, times, accuracy, ...).
        history: ``(step, validation accuracy)`` of each validation, in order.
        losses: training loss of each step (label-smoothed cross-entropy), in order.
    """

    model: InceptionV1
    facts: dict[str, Any]
    history: list[tuple[int, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def learning_rate(step: int, steps: int, peak: float) -> float:
    """Warm-up + cosine: ``peak * step / w`` for ``step < w``, then a half cosine to 0 at
    ``steps`` (``w`` = :data:`WARMUP_FRACTION` of ``steps``, at least 1)."""
    warmup = max(1, round(WARMUP_FRACTION * steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: conv/linear weights (ndim > 1) decayed, norms and biases not."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def evaluate(
    model: nn.Module,
    start: int,
    count: int,
    *,
    size: int,
    world_seed: int = DEMO_WORLD_SEED,
    batch_size: int = EVAL_BATCH,
) -> float:
    """Top-1 accuracy of ``model`` on world images ``[start, start + count)``, in [0, 1].

    Runs in eval mode without gradients and puts the model back in the mode it was in.
    """
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for offset in range(0, count, batch_size):
                n = min(batch_size, count - offset)
                images, labels = world_batch(start + offset, n, size=size, world_seed=world_seed)
                predicted = model(to_float(images)).argmax(dim=1)
                correct += int((predicted == labels).sum())
    finally:
        model.train(was_training)
    return correct / count


class ProgressLine:
    """Progress of the run on ``stream`` (stderr): one line every ``interval`` seconds."""

    def __init__(self, stream: TextIO | None, interval: float, clock: Callable[[], float]):
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.last = -math.inf

    def due(self) -> bool:
        return self.stream is not None and self.clock() - self.last >= self.interval

    def write(self, text: str) -> None:
        if self.stream is not None:
            self.last = self.clock()
            self.stream.write(text + "\n")
            self.stream.flush()


def minutes(seconds: float) -> str:
    """``75.2`` -> ``1m15s``."""
    s = max(0, round(seconds))
    return f"{s // 60}m{s % 60:02d}s"


def forward_flops(model: nn.Module, size: int) -> int:
    """Floating-point operations of one forward pass of one ``size`` px image (a multiply-add
    counts 2, as ``torch.utils.flop_counter`` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    return int(counter.get_total_flops())


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def process_cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_demo(
    settings: TrainSettings,
    *,
    stream: TextIO | None = sys.stderr,
    log_every: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> TrainResult:
    """Train the demo model with ``settings``; progress goes to ``stream`` (None: silent).

    Steps run in order; every ``settings.val_every`` steps the model is validated on the first
    ``val_images`` of the validation range, and at the end on ``final_val_images`` of it.
    Fewer steps than planned run only when the time budget is short (see
    :class:`TrainSettings`).
    """
    s = settings
    width = s.width if s.width is not None else DEMO_WIDTH
    size = s.input_size if s.input_size is not None else DEMO_INPUT_SIZE
    progress = ProgressLine(stream, log_every, clock)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    start_time, start_cpu = clock(), process_cpu_seconds()
    deadline = start_time + s.time_budget_s if s.time_budget_s is not None else math.inf
    load_before = os.getloadavg()
    try:
        model = build_demo_model(CLASS_NAMES, seed=s.seed, width=width, input_size=size)
        model = model.to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.AdamW(parameter_groups(model, s.weight_decay), lr=s.lr)
        result = TrainResult(model=model, facts={})
        progress.write(
            f"train-demo: width {width}, {size} px, {s.steps} steps of {s.batch_size} images, "
            f"{s.threads} threads, seed {s.seed}"
        )
        with seeded(s.seed + 1):  # dropout masks; the initial weights used seed s.seed
            loop = _TrainLoop(model, optimizer, s, size, deadline, result, progress, clock)
            loop.run()
        model.eval()
        model = model.to(memory_format=torch.contiguous_format)
        result.model = model
        progress.write(f"validating on {s.final_val_images:,} fresh images...")
        accuracy = evaluate(model, VALIDATION_START, s.final_val_images, size=size)
    finally:
        torch.set_num_threads(previous_threads)
    wall, cpu = clock() - start_time, process_cpu_seconds() - start_cpu
    progress.write(
        f"train-demo: {loop.done} steps in {minutes(wall)} (CPU {minutes(cpu)}); "
        f"validation accuracy {accuracy:.2%} on {s.final_val_images:,} images"
    )
    result.facts = {
        "settings": asdict(s),
        "recipe": {"optimizer": "AdamW", "schedule": "linear warm-up + cosine",
                   "warmup_fraction": WARMUP_FRACTION, "augmentation": "the world's nuisances"},
        "steps": loop.done,
        "planned_steps": s.steps,
        "scheduled_steps": loop.planned,
        "images_seen": loop.done * s.batch_size,
        "stopped": loop.stopped,
        "train_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "validation": {
            "accuracy": accuracy,
            "images": s.final_val_images,
            "indices": [VALIDATION_START, VALIDATION_START + s.final_val_images],
        },
        "history": [[step, acc] for step, acc in result.history],
        "world": {"name": "synthetic", "seed": DEMO_WORLD_SEED, "version": WORLD_VERSION,
                  "size": size, "train_indices": [train_start(s.seed),
                  train_start(s.seed) + loop.done * s.batch_size]},
        "forward_flops_per_image": forward_flops(model, size),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count()},
        "torch": torch.__version__,
        "threads": s.threads,
    }  # fmt: skip
    return result


#: Steps timed before the pace is trusted to shorten the schedule (the first steps are slow).
PACE_AFTER_STEPS = 10


class _TrainLoop:
    """The optimizer steps of one run, and the bookkeeping of a time budget.

    Attributes:
        planned: steps the schedule spans now (``settings.steps``, less when the budget binds).
        done: steps taken.
        stopped: ``"steps"`` (all planned steps ran), ``"time budget: schedule shortened"``
            or ``"time budget: cut"`` (the deadline passed before the shortened schedule ended).
    """

    def __init__(
        self,
        model: InceptionV1,
        optimizer: torch.optim.Optimizer,
        settings: TrainSettings,
        size: int,
        deadline: float,
        result: TrainResult,
        progress: ProgressLine,
        clock: Callable[[], float],
    ) -> None:
        self.model, self.optimizer, self.s, self.size = model, optimizer, settings, size
        self.deadline, self.result, self.progress, self.clock = deadline, result, progress, clock
        self.planned = settings.steps
        self.done = 0
        self.stopped = "steps"

    def run(self) -> None:
        s = self.s
        start = self.clock()
        batches: Iterator[tuple[Tensor, Tensor]] = training_batches(
            s.seed, s.batch_size, s.steps, size=self.size, prefetch=s.prefetch
        )
        losses, correct, seen = 0.0, 0, 0
        for step, (images, labels) in enumerate(batches):
            if step >= self.planned:
                break
            if self.clock() >= self.deadline:
                self.stopped = "time budget: cut"
                break
            loss, hits = self.step(step, images, labels)
            self.done = step + 1
            losses, correct, seen = losses + loss * len(labels), correct + hits, seen + len(labels)
            self.replan(start)
            validate = s.val_every > 0 and self.done % s.val_every == 0 and self.done < self.planned
            if validate:
                accuracy = evaluate(self.model, VALIDATION_START, s.val_images, size=self.size)
                self.result.history.append((self.done, accuracy))
            if self.progress.due() or validate or self.done == self.planned:
                self.report(start, losses / seen, correct / seen, validate)
                losses, correct, seen = 0.0, 0, 0

    def step(self, step: int, images: Tensor, labels: Tensor) -> tuple[float, int]:
        """One optimizer step on a batch; returns (loss, correct predictions)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(step, self.planned, self.s.lr)
        logits = self.model(to_float(images))
        loss = F.cross_entropy(logits, labels, label_smoothing=self.s.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        self.result.losses.append(value)
        return value, int((logits.detach().argmax(dim=1) == labels).sum())

    def replan(self, start: float) -> None:
        """Shorten the schedule when the pace so far (validations included) says the planned
        steps and the final validation (at a third of a training image's cost per image,
        one forward of three passes) would not end before the deadline."""
        if not math.isfinite(self.deadline) or self.done < PACE_AFTER_STEPS:
            return
        now = self.clock()
        per_step = (now - start) / self.done
        final_validation = self.s.final_val_images / self.s.batch_size * per_step / 3
        fits = self.done + int((self.deadline - now - final_validation) / per_step)
        if fits < self.planned:
            self.planned = max(self.done + 1, fits)
            self.stopped = "time budget: schedule shortened"

    def report(self, start: float, loss: float, accuracy: float, validated: bool) -> None:
        elapsed = self.clock() - start
        rate = self.done * self.s.batch_size / elapsed if elapsed > 0 else 0.0
        eta = (self.planned - self.done) * self.s.batch_size / rate if rate > 0 else math.inf
        line = (
            f"step {self.done}/{self.planned}  loss {loss:.3f}  train acc {accuracy:.1%}  "
            f"{rate:.0f} img/s  elapsed {minutes(elapsed)}  "
            f"ETA {minutes(eta) if math.isfinite(eta) else '?'}"
        )
        if validated:
            line += f"  val acc {self.result.history[-1][1]:.1%} ({self.s.val_images} images)"
        self.progress.write(line)
