"""torchvision classifiers by name (``torchvision:resnet50``), wrapped with hooks.

Weights are torchvision's own (``weights = "DEFAULT"`` or a name such as ``"IMAGENET1K_V2"``;
class names, input size and normalization come from the weights' metadata), a local file of
the same architecture, or ``"random"``. Layers map our names to submodule paths; ResNet-like
models default to their four stages ``layer1..layer4``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from generator.errors import WeightsError, unknown_name
from generator.models.formats import mismatch_report, unwrap_state_dict
from generator.models.hooked import HookedModel
from generator.models.inception import IMAGENET_MEAN, IMAGENET_STD, seeded
from generator.models.model_spec import ModelSpec, WeightSource

#: Default layers of architectures whose stages have well-known names.
_DEFAULT_LAYERS = {
    re.compile(r"^(resnet|resnext|wide_resnet)\d"): {f"layer{i}": f"layer{i}" for i in range(1, 5)},
}

#: Constructor arguments matching torchvision's published weights (their aux heads are in the
#: files, and their builders switch ``transform_input`` on).
_PRETRAINED_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": True, "transform_input": True, "init_weights": False},
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": False},
}

#: torch.hub's convention: ``name-<sha256 prefix>.ext``.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


class ImageNorm(nn.Module):
    """``(images - mean) / std`` per channel: ``[B, 3, H, W]`` in [0, 1] -> normalized."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    mean: Tensor
    std: Tensor

    def forward(self, images: Tensor) -> Tensor:
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def weights_enum(arch: str, name: str = "DEFAULT") -> Any:
    """torchvision's weights entry ``name`` of ``arch`` (e.g. ``GoogLeNet_Weights.IMAGENET1K_V1``)."""
    import torchvision

    if arch not in classification_models():
        raise unknown_name("torchvision classifier", arch, classification_models())
    enum = torchvision.models.get_model_weights(arch)
    try:
        return enum[name]
    except KeyError:
        raise unknown_name(
            f"weights name of {arch}", name, [w.name for w in enum] + ["DEFAULT"]
        ) from None


def torchvision_source(arch: str, name: str = "DEFAULT") -> WeightSource:
    """The download address and checksum prefix of torchvision's ``arch`` weights."""
    entry = weights_enum(arch, name)
    filename = entry.url.rsplit("/", 1)[-1]
    match = _HASH_IN_NAME.search(filename)
    return WeightSource(
        url=entry.url, filename=filename, sha256_prefix=match.group(1) if match else None
    )


def torchvision_categories(arch: str = "googlenet", name: str = "DEFAULT") -> tuple[str, ...]:
    """Class names from the weights' metadata (``meta["categories"]``)."""
    return tuple(weights_enum(arch, name).meta["categories"])


def default_layers(arch: str, module: nn.Module) -> dict[str, str]:
    for pattern, layers in _DEFAULT_LAYERS.items():
        if pattern.match(arch):
            return dict(layers)
    children = [name for name, _ in module.named_children()]
    raise WeightsError(
        f"torchvision model {arch!r} has no default layers",
        where=f'[models."torchvision:{arch}"] layers',
        expected='layers = { name = "module.path" } naming submodules, e.g. one of: '
        + ", ".join(children),
        fix=f'add a [models.<name>] table with torchvision = "{arch}" and layers = {{...}}',
    )


def read_module_state(module: nn.Module, path: Path, *, where: str, fix: str) -> dict[str, Tensor]:
    """The state_dict in ``path``, checked key by key and shape by shape against ``module``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"cannot read the weights file: {err}", where=where, fix=fix) from err
    state = unwrap_state_dict(raw)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    problems = mismatch_report(expected, {k: tuple(v.shape) for k, v in state.items()})
    if problems:
        raise WeightsError(
            "these weights do not fit the architecture",
            where=where,
            expected=f"{len(expected)} tensors of the architecture",
            got="\n    ".join(["", *problems]),
            fix=fix,
        )
    return state


def build_torchvision_classifier(
    spec: ModelSpec,
    *,
    weights_file: Path | None,
    weights_digest: str | None = None,
    meta: bool = False,
) -> HookedModel:
    """A :class:`HookedModel` of ``spec.arch`` (random weights when ``weights_file`` is None).

    ``weights_file`` must hold the state_dict of the architecture with ``spec.weights``'s
    (or DEFAULT) metadata; class names, input size and normalization come from that metadata.
    ``meta=True`` builds it on the meta device: shapes only, the file is checked, not loaded.
    """
    import torchvision

    arch = str(spec.arch)
    entry = weights_enum(arch, spec.weights_name or "DEFAULT")
    if spec.labels:
        from generator.models.labels import read_label_file

        labels: tuple[str, ...] = read_label_file(spec.labels)
    else:
        labels = tuple(entry.meta["categories"])
    if weights_file is None and arch in _PRETRAINED_KWARGS:
        kwargs: dict[str, Any] = {"init_weights": True}  # silences torchvision's warning
    else:
        kwargs = dict(_PRETRAINED_KWARGS.get(arch, {}))
    with seeded(0), torch.device("meta") if meta else contextlib.nullcontext():
        module = torchvision.models.get_model(arch, weights=None, num_classes=len(labels), **kwargs)
    if weights_file is not None:
        fix = f"point [models.{spec.name}] weights at a {arch} state_dict, or remove it"
        state = read_module_state(module, weights_file, where=str(weights_file), fix=fix)
        if not meta:
            module.load_state_dict(state, strict=True)
    transforms = entry.transforms()
    mean = tuple(getattr(transforms, "mean", IMAGENET_MEAN))
    std = tuple(getattr(transforms, "std", IMAGENET_STD))
    size = spec.input_size or int(getattr(transforms, "crop_size", [224])[0])
    layers: Mapping[str, str] = spec.layers or default_layers(arch, module)
    norm = ImageNorm(mean, std).to("meta" if meta else "cpu")
    return HookedModel(
        module,
        layers,
        norm,
        labels,
        name=spec.name,
        input_size=size,
        weights_digest=weights_digest or ("random-init-seed0" if weights_file is None else None),
    )
