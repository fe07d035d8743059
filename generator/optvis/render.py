"""The render loop: optimize a batch of images to maximize an objective.

``render(model, objective, ...)`` runs, for each of ``tries`` attempts: a fresh
parameterization, ``steps`` Adam steps on ``objective`` evaluated on randomly transformed
images, then the objective on the un-transformed final images; every batch element keeps its
best attempt independently. The model runs only as far as the deepest layer the objective reads
(``model.forward_to``), with its parameters frozen for the duration (restored afterwards).

Randomness and reproducibility. Everything random comes from CPU ``torch.Generator``s seeded
from ``seed`` with :func:`derive_seed`:

* the transforms of try ``t`` draw from ``derive_seed(seed, t, "transforms")``: one draw per
  transform per step for the whole batch, so the draws do not depend on the batch;
* icon ``i`` of try ``t`` starts from noise drawn from its own generator,
  ``derive_seed(seed, t, "icon", icon_seeds[i])``.

So the same seed gives the same icons on CPU, and an icon depends only on its own objective,
``seed`` and its ``icon_seed``, whatever batch it lands in: rendering a batch equals rendering
each element alone. The randomness is identical; the arithmetic is equal up to the last-bit
rounding of batched convolutions, which in float32 a long optimization can amplify (a ReLU
gate or the objective's 0.1 floor flipping), so exact equality is checked in float64. The
atlas passes cell indices as ``icon_seeds`` so a resumed render with another batch size gets
the same icons.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from generator.models.base import AtlasModel
from generator.optvis.objectives import Objective, VisContext
from generator.optvis.param import ImageParam, fourier_image
from generator.optvis.transform import Transform, compose, standard_transforms

#: Adam's learning rate in Lucid's render loop and the atlas recipe (METHOD.md 5).
LEARNING_RATE = 0.05

#: ``progress(steps_done, steps_total)``, called after every optimization step.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Rendered:
    """The result of :func:`render`.

    Attributes:
        images: ``[B, 3, H, W]`` float32 in [0, 1] on the CPU: the kept try of every element.
        values: ``[B]`` float32: the selection objective of the kept try, evaluated on the
            un-transformed final image.
        try_values: ``[tries, B]`` float32: the same for every try.
        best_try: ``[B]`` int64: which try each element kept.
        description: the objective's description.
        seconds: wall time of the whole render.
    """

    images: Tensor
    values: Tensor
    try_values: Tensor
    best_try: Tensor
    description: str
    seconds: float

    def icons(self) -> Tensor:
        """The images as uint8 ``[B, H, W, 3]`` (rounded from [0, 1] x 255)."""
        return (self.images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed determined by ``parts`` (blake2b of their text): independent streams for
    each (seed, try, purpose, icon) without any global state."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def _cpu_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


def render(
    model: AtlasModel,
    objective: Objective,
    *,
    batch: int | None = None,
    size: int | tuple[int, int] = 80,
    steps: int = 512,
    tries: int = 1,
    lr: float = LEARNING_RATE,
    param: ImageParam = fourier_image,
    transforms: Sequence[Transform] | None = None,
    seed: int | torch.Generator = 0,
    icon_seeds: Sequence[int] | None = None,
    select_by: Objective | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    progress: Progress | None = None,
) -> Rendered:
    """Render ``batch`` images that maximize ``objective`` on ``model``.

    Args:
        model: an :class:`AtlasModel` (on ``device``); its parameters are frozen during the
            render and restored afterwards, and its train/eval mode is restored.
        objective: what to maximize, one value per element (see ``objectives``).
        batch: the number of images; default: the objective's own batch (per-element
            directions) or 1.
        size: icon side in px, or ``(height, width)``; the network sees this size.
        steps: Adam steps per try.
        tries: attempts per icon; each element keeps its try with the highest final value.
        lr: Adam's learning rate (0.05).
        param: the image parameterization (default: Fourier, decorrelated colours, sigmoid).
        transforms: the random transforms; default :func:`standard_transforms` of ``size``.
        seed: an int, or a generator from which one seed is drawn.
        icon_seeds: one int per element naming its noise stream (default ``0..batch-1``).
        select_by: the objective that ranks tries (default ``objective``); e.g. the direction
            term alone, as the recipe did, when ``objective`` includes the border penalty.
        device: where to optimize (default: the model's device); ``dtype``: the parameters'.
        autocast: ``torch.bfloat16`` or ``torch.float16`` runs the model's forward in mixed
            precision during the steps (objectives stay float32; the final evaluation that
            ranks tries runs in full precision); None for full precision. float16 adds dynamic
            loss scaling (its gradients underflow otherwise), which skips a step for the whole
            batch when any gradient overflows: bfloat16 needs none and is the better choice.
        channels_last: run the model in the channels-last memory format (GPU speed).
        progress: called as ``progress(steps_done, steps_total)`` after each step.

    Returns:
        A :class:`Rendered` with images ``[B, 3, H, W]`` in [0, 1] and final values ``[B]``.
    """
    started = time.perf_counter()
    b = _batch_size(objective, select_by, batch)
    height, width = (size, size) if isinstance(size, int) else size
    if steps < 0 or tries < 1:
        raise ValueError(f"render: need steps >= 0 and tries >= 1, got {steps} and {tries}")
    seeds = list(range(b)) if icon_seeds is None else [int(s) for s in icon_seeds]
    if len(seeds) != b:
        raise ValueError(f"render: {len(seeds)} icon_seeds for a batch of {b} images")
    base = _base_seed(seed)
    dev = torch.device(device) if device is not None else _model_device(model)
    transform = compose(standard_transforms((height, width)) if transforms is None else transforms)
    selector = objective if select_by is None else select_by
    layers = sorted(objective.layers | selector.layers)
    if autocast not in (None, torch.bfloat16, torch.float16):
        raise ValueError(f"render: autocast must be None, bfloat16 or float16, got {autocast}")

    def activations(images: Tensor, mixed: bool) -> dict[str, Tensor]:
        if not layers:
            return {}
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=autocast, enabled=mixed and autocast is not None):
            return model.forward_to(images, layers)

    best_images: Tensor | None = None
    try_values = torch.empty((tries, b), dtype=torch.float32)
    total = tries * steps
    with _prepared(model, channels_last=channels_last):
        for t in range(tries):
            transform_gen = _cpu_generator(derive_seed(base, t, "transforms"))
            icon_gens = [_cpu_generator(derive_seed(base, t, "icon", s)) for s in seeds]
            params, image_f = param(b, height, width, generator=icon_gens, device=dev, dtype=dtype)
            optimizer = torch.optim.Adam(params, lr=lr)
            scaler = torch.amp.GradScaler(dev.type, enabled=autocast == torch.float16)
            for step in range(steps):
                optimizer.zero_grad(set_to_none=True)
                image = image_f()
                acts = activations(transform(image, transform_gen), mixed=True)
                value = objective(VisContext(acts, image))
                scaler.scale(-value.sum()).backward()
                scaler.step(optimizer)
                scaler.update()
                if progress is not None:
                    progress(t * steps + step + 1, total)
            with torch.no_grad():
                image = image_f()
                final = selector(VisContext(activations(image, mixed=False), image)).float().cpu()
            try_values[t] = final
            images = image.detach().float().cpu()
            if best_images is None:
                best_images = images
            else:
                better = final > try_values[:t].max(dim=0).values
                best_images[better] = images[better]
    assert best_images is not None  # tries >= 1
    return Rendered(
        images=best_images,
        values=try_values.max(dim=0).values,
        try_values=try_values,
        best_try=try_values.argmax(dim=0),
        description=objective.description,
        seconds=time.perf_counter() - started,
    )


def _batch_size(objective: Objective, select_by: Objective | None, batch: int | None) -> int:
    tied = {o.batch for o in (objective, select_by) if o is not None and o.batch is not None}
    if len(tied) > 1:
        raise ValueError(f"render: objective and select_by are for different batches: {tied}")
    own = tied.pop() if tied else None
    if batch is not None and own is not None and batch != own:
        raise ValueError(
            f"render: batch={batch} but the objective {objective.description!r} is for {own}"
        )
    b = batch if batch is not None else (own if own is not None else 1)
    if b < 1:
        raise ValueError(f"render: batch must be >= 1, got {b}")
    return b


def _base_seed(seed: int | torch.Generator) -> int:
    if isinstance(seed, torch.Generator):
        return int(torch.randint(2**62, (1,), generator=seed, device=seed.device).item())
    return int(seed)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@contextlib.contextmanager
def _prepared(model: nn.Module, *, channels_last: bool) -> Iterator[None]:
    """Within the block: eval mode, parameters frozen (no weight gradients are computed),
    optionally channels-last weights. On exit, even on error: the caller's mode, flags and
    memory format are restored, and any hook registered on the model during the block is
    removed (a model whose ``forward_to`` captures layers with hooks must not leak them)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    hooks_before = {
        id(m): {name: set(getattr(m, name, {})) for name in _HOOK_DICTS} for m in model.modules()
    }
    converted: list[nn.Parameter] = []
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()
        if channels_last:
            for p, _ in flags:
                if p.dim() == 4 and p.is_contiguous():
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
                    converted.append(p)
        yield
    finally:
        for p in converted:
            p.data = p.data.contiguous()
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)
        for m in model.modules():
            before = hooks_before.get(id(m), {})
            for name in _HOOK_DICTS:
                table = getattr(m, name, None)
                if table is None:
                    continue
                for key in set(table) - before.get(name, set()):
                    del table[key]
