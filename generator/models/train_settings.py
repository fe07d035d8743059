"""What decides a demo training run, and which images of the synthetic world it may draw.

Torch-free (the CLI shows these defaults without importing torch).

Nothing is stored: image ``i`` of the demo world is a pure function of ``(world seed, size, i)``
(:mod:`generator.data.world`), so "fresh images" means "indices no other use draws from". The
demo world (seed :data:`DEMO_WORLD_SEED`) is split into ranges that never overlap:

=================================  =====================  ==================================
range                              who draws from it      note
=================================  =====================  ==================================
``[0, 2**31)``                     atlases, publications  the registry's synthetic data set
                                                          is ``[0, 1_000_000)``
``[2**31, 3 * 2**30)``             training validation    :data:`VALIDATION_START`
``[3 * 2**30, 2**32)``             tests of the weights   :data:`TEST_START`
``[(s+1) 2**32, (s+2) 2**32)``     training with seed s   :func:`train_start`; image k of the
                                                          run is ``train_start(s) + k``
=================================  =====================  ==================================

Training sees every image once (an endless stream, no epochs). Labels are balanced over any
range (:func:`generator.data.world.labels_of`: each block of 12 indices holds every class once).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The world the demo model is trained on and the demo publication shows (the registry's
#: ``[datasets.synthetic]`` default seed).
DEMO_WORLD_SEED = 0

#: First index of the validation range (``atlas train-demo``'s periodic and final checks).
VALIDATION_START = 1 << 31

#: First index of the test range (``tests/models/test_demo_weights.py``).
TEST_START = 3 << 30

#: Size of each training run's range; seeds up to :data:`MAX_SEED` keep indices below 2**63.
TRAIN_SPAN = 1 << 32
MAX_SEED = (1 << 30) - 1


def train_start(seed: int) -> int:
    """First training index of the run with ``seed`` (see the table in the module docstring)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, {MAX_SEED}], got {seed}")
    return (seed + 1) * TRAIN_SPAN


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides a training run (saved in the facts beside the weights).

    Attributes:
        seed: initial weights, dropout and the training images (``train_start(seed)`` on).
        steps: optimizer steps planned; the learning-rate schedule spans them.
        batch_size: images per step.
        width: channel multiplier of the InceptionV1; None: the demo architecture's
            (``generator.models.demo.DEMO_WIDTH``).
        input_size: image side in pixels (the world is drawn at this size); None: the demo
            architecture's (``DEMO_INPUT_SIZE``).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled decay, on conv/linear weights only.
        label_smoothing: of the cross-entropy.
        threads: ``torch.set_num_threads`` during the run (results depend on it). One by
            default: the renderer's background thread takes part of a second core, and on a
            shared machine two OpenMP threads lose far more to waiting for each other than
            they gain (``bench/RESULTS.md``, "Demo model training").
        time_budget_s: wall-clock limit of the whole run (final validation included). When
            the measured pace says the planned steps will not fit, the schedule is shortened
            to the steps that do (the run is then no longer reproducible). None: no limit.
        val_every: steps between validations (0: only at the end).
        val_images: images of each periodic validation (the start of the validation range).
        final_val_images: images of the final validation.
        prefetch: draw the next batch in a background thread while training on this one.
    """

    seed: int = 0
    steps: int = 800
    batch_size: int = 128
    width: float | None = None
    input_size: int | None = None
    lr: float = 1e-2
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    threads: int = 1
    time_budget_s: float | None = None
    val_every: int = 200
    val_images: int = 600
    final_val_images: int = 2000
    prefetch: bool = True

    def __post_init__(self) -> None:
        train_start(self.seed)  # validates the seed's range
        for name in ("steps", "batch_size", "threads", "val_images", "final_val_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.val_every < 0:
            raise ValueError(f"val_every must be >= 0, got {self.val_every}")
        if self.width is not None and not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.input_size is not None and not 32 <= self.input_size <= 512:
            raise ValueError(f"input_size must be in [32, 512], got {self.input_size}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive, got {self.time_budget_s}")
