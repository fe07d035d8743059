"""Weight formats of InceptionV1: explicit key maps between ours and published state_dicts.

* ``"lucid"``: the PyTorch state_dict of Lucid's ``inception5h`` published with the PyTorch
  ports (and built offline by torch-lucent's ``InceptionV1``): one ``<layer>_pre_relu_conv``
  per convolution, e.g. ``conv2d0_pre_relu_conv.weight``, ``mixed4a_3x3_pre_relu_conv.weight``,
  ``mixed4a_5x5_bottleneck_pre_relu_conv.bias``, ``softmax2_pre_activation_matmul.weight``.
* ``"torchvision"``: torchvision's ``googlenet`` (``conv1.conv.weight``, ``conv1.bn.*``,
  ``inception3a.branch2.1.conv.weight``, ``fc.weight``); the untrained auxiliary classifiers
  (``aux1.*``, ``aux2.*``) are ignored.

A state_dict that does not fit raises a :class:`WeightsError` listing the first few missing,
unexpected and mismatched keys with their shapes, in the file's own key names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from generator.errors import WeightsError
from generator.models.inception import InceptionV1

FORMATS: dict[str, str] = {
    "lucid": "a Lucid-format InceptionV1 state_dict (inception5h.pth; keys like "
    "conv2d0_pre_relu_conv.weight, mixed4a_3x3_pre_relu_conv.weight)",
    "torchvision": "a torchvision googlenet state_dict (keys like conv1.conv.weight, "
    "inception3a.branch1.conv.weight, fc.weight)",
}

#: Our branch names -> Lucid's ``<block>_<branch>_pre_relu_conv`` infixes.
_LUCID_BRANCHES = {
    "b1x1": "1x1",
    "b3x3_reduce": "3x3_bottleneck",
    "b3x3": "3x3",
    "b5x5_reduce": "5x5_bottleneck",
    "b5x5": "5x5",
    "pool_proj": "pool_reduce",
}

#: Our branch names -> torchvision's ``Inception`` submodule paths.
_TORCHVISION_BRANCHES = {
    "b1x1": "branch1",
    "b3x3_reduce": "branch2.0",
    "b3x3": "branch2.1",
    "b5x5_reduce": "branch3.0",
    "b5x5": "branch3.1",
    "pool_proj": "branch4.1",
}

_TORCHVISION_STEM = {"conv2d0": "conv1", "conv2d1": "conv2", "conv2d2": "conv3"}

#: Keys a file may hold that no architecture of ours uses.
_IGNORED_PREFIXES = {"lucid": (), "torchvision": ("aux1.", "aux2.")}

#: How many keys of each kind an error message lists.
_SHOWN = 5


def _module_pairs(model: InceptionV1, fmt: str) -> list[tuple[str, str]]:
    """(our module path, the format's module path) for every module holding tensors."""
    blocks = list(model.config.blocks)
    pairs: list[tuple[str, str]] = []
    if fmt == "lucid":
        for name in ("conv2d0", "conv2d1", "conv2d2"):
            pairs.append((f"stages.{name}.conv", f"{name}_pre_relu_conv"))
        for block in blocks:
            for ours, theirs in _LUCID_BRANCHES.items():
                pairs.append((f"stages.{block}.{ours}.conv", f"{block}_{theirs}_pre_relu_conv"))
        pairs.append(("stages.logits.fc", "softmax2_pre_activation_matmul"))
    elif fmt == "torchvision":
        units = [(f"stages.{ours}", theirs) for ours, theirs in _TORCHVISION_STEM.items()]
        for block in blocks:
            tv_block = block.replace("mixed", "inception")
            for ours, theirs in _TORCHVISION_BRANCHES.items():
                units.append((f"stages.{block}.{ours}", f"{tv_block}.{theirs}"))
        for ours, theirs in units:
            pairs += [(f"{ours}.conv", f"{theirs}.conv"), (f"{ours}.norm", f"{theirs}.bn")]
        pairs.append(("stages.logits.fc", "fc"))
    else:
        raise ValueError(f"unknown weight format {fmt!r}; expected one of {sorted(FORMATS)}")
    return pairs


def key_map(model: InceptionV1, fmt: str) -> dict[str, str]:
    """Our state_dict key -> the format's key, for every tensor of ``model``.

    Raises a :class:`WeightsError` when ``model`` has tensors the format cannot hold (e.g.
    batch norm statistics in the Lucid format).
    """
    pairs = _module_pairs(model, fmt)
    mapping: dict[str, str] = {}
    unmapped = []
    for key in model.state_dict():
        for ours, theirs in pairs:
            if key.startswith(ours + "."):
                mapping[key] = theirs + key[len(ours) :]
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise WeightsError(
            f"model {model.name!r} ({model.config.norm} norm, {model.config.geometry} geometry)"
            f" has tensors the {fmt} format cannot hold",
            expected=FORMATS[fmt],
            got=", ".join(unmapped[:_SHOWN]),
        )
    return mapping


def expected_shapes(model: InceptionV1, fmt: str) -> dict[str, tuple[int, ...]]:
    """The format's keys and tensor shapes that fit ``model``."""
    state = model.state_dict()
    return {theirs: tuple(state[ours].shape) for ours, theirs in key_map(model, fmt).items()}


def unwrap_state_dict(obj: Any) -> dict[str, Tensor]:
    """The tensor dict of a loaded checkpoint: plain, under ``"state_dict"``/``"model"``, or
    saved from ``nn.DataParallel`` (every key prefixed ``module.``)."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        return {}
    state = {str(k): v for k, v in obj.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def mismatch_report(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]]
) -> list[str]:
    """Lines naming the first few missing, unexpected and shape-mismatched keys (empty: fits)."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    mismatched = [k for k in expected if k in got and tuple(got[k]) != tuple(expected[k])]
    lines = []
    for title, keys, describe in (
        ("missing", missing, lambda k: f"{k} {_shape(expected[k])}"),
        ("unexpected", unexpected, lambda k: f"{k} {_shape(got[k])}"),
        (
            "wrong shape",
            mismatched,
            lambda k: f"{k} is {_shape(got[k])}, expected {_shape(expected[k])}",
        ),
    ):
        if keys:
            shown = "; ".join(describe(k) for k in keys[:_SHOWN])
            more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
            lines.append(f"{len(keys)} {title}: {shown}{more}")
    return lines


def convert_state_dict(
    model: InceptionV1, state: Any, fmt: str, *, where: str, fix: str | None = None
) -> dict[str, Tensor]:
    """A ``fmt``-format state_dict under ``model``'s keys, after checking every key and shape.

    ``where`` (the file) and ``fix`` (the action that gets good weights) go into the
    :class:`WeightsError` raised when keys or shapes do not fit.
    """
    mapping = key_map(model, fmt)
    tensors = unwrap_state_dict(state)
    ignored = _IGNORED_PREFIXES[fmt]
    tensors = {k: v for k, v in tensors.items() if not k.startswith(ignored)}
    expected = expected_shapes(model, fmt)
    for theirs in mapping.values():
        # Batch-norm step counters are absent from older torchvision files; they are unused.
        if theirs.endswith("num_batches_tracked") and theirs not in tensors:
            tensors[theirs] = torch.zeros((), dtype=torch.long)
    problems = mismatch_report(expected, {k: tuple(v.shape) for k, v in tensors.items()})
    if problems:
        raise WeightsError(
            f"these weights do not fit model {model.name!r}",
            where=where,
            expected=f"{FORMATS[fmt]}: {len(expected)} tensors",
            got="\n    ".join(["", *problems]),
            fix=fix,
        )
    return {ours: tensors[theirs] for ours, theirs in mapping.items()}


def load_in_format(
    model: InceptionV1, state: Any, fmt: str, *, where: str, fix: str | None = None
) -> None:
    """Copy a ``fmt``-format state_dict into ``model`` (in place, strict; see
    :func:`convert_state_dict` for the checks)."""
    model.load_state_dict(convert_state_dict(model, state, fmt, where=where, fix=fix))


def export_state_dict(model: InceptionV1, fmt: str) -> dict[str, Tensor]:
    """``model``'s weights under the format's keys (e.g. to share a model as a Lucid file)."""
    state = model.state_dict()
    return {theirs: state[ours].detach().clone() for ours, theirs in key_map(model, fmt).items()}
