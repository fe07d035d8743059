"""The small demo model and the saved-model format it is committed in.

The demo model is our InceptionV1 at a quarter of the width, on 64 px inputs, with batch norm
(trainable from scratch on a CPU), for a handful of classes of the synthetic demo world. Its
trained weights live in the package at ``generator/models/weights/demo.pt`` with a
``demo.json`` beside it; ``atlas train-demo`` (:mod:`generator.models.train`) writes them.

Saved-model format (``torch.save`` of a dict, loadable with ``weights_only=True``)::

    {"format": "atlas-model", "version": 1, "name": str,
     "architecture": InceptionConfig.to_dict(), "labels": [str, ...],
     "state_dict": {our keys: tensors}}

The ``.json`` beside it holds the same facts without tensors plus the file's sha256,
parameter count and whatever ``facts`` the writer adds (data set, epochs, accuracy...).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from generator.cache import atomic_write_bytes, atomic_write_json, bytes_digest, file_digest
from generator.errors import AtlasError, WeightsError
from generator.models.base import count_parameters
from generator.models.formats import mismatch_report
from generator.models.inception import InceptionConfig, InceptionV1, build_inceptionv1

SAVED_FORMAT = "atlas-model"
SAVED_VERSION = 1

#: Where the committed demo weights live (package data; see pyproject's package-data).
DEMO_WEIGHTS = Path(__file__).resolve().parent / "weights" / "demo.pt"

#: The demo architecture: Lucid's geometry, a quarter of the channels, 64 px, batch norm.
DEMO_WIDTH = 0.25
DEMO_INPUT_SIZE = 64
DEMO_NORM = "batch"

DEMO_FIX = "run `atlas train-demo` (it writes generator/models/weights/demo.pt)"


def demo_config(num_classes: int = 10, **changes: Any) -> InceptionConfig:
    """The demo architecture for ``num_classes`` classes (``changes`` override fields)."""
    base = dict(
        geometry="lucid",
        norm=DEMO_NORM,
        width=DEMO_WIDTH,
        input_size=DEMO_INPUT_SIZE,
        num_classes=num_classes,
        preprocess="centered",
        dropout=0.2,
    )
    base.update(changes)
    return InceptionConfig(**base)  # type: ignore[arg-type]


def build_demo_model(
    labels: Sequence[str], *, seed: int = 0, name: str = "demo", **changes: Any
) -> InceptionV1:
    """A randomly initialised (from ``seed``) demo model with one logit per label.

    ``changes`` override architecture fields, e.g. ``width=0.5`` or ``input_size=96``.
    """
    config = demo_config(len(labels), **changes)
    return build_inceptionv1(config, name=name, labels=labels, seed=seed)


def save_model(
    model: InceptionV1, path: str | Path, *, facts: Mapping[str, Any] | None = None
) -> Path:
    """Save ``model`` in the saved-model format at ``path`` and its facts at ``path.json``.

    Both writes are atomic. Returns the ``.json`` path.
    """
    path = Path(path)
    payload = {
        "format": SAVED_FORMAT,
        "version": SAVED_VERSION,
        "name": model.name,
        "architecture": model.config.to_dict(),
        "labels": list(model.labels),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["file"] = path.name
    meta["sha256"] = bytes_digest(data, length=64)
    meta["parameters"] = count_parameters(model)
    meta["layers"] = [[i.name, i.channels, i.size] for i in model.layer_infos]
    meta["facts"] = dict(facts or {})
    facts_path = path.with_suffix(".json")
    atomic_write_json(facts_path, meta)
    return facts_path


def read_saved_facts(path: str | Path) -> dict[str, Any] | None:
    """The ``.json`` beside a saved model, or None when it is absent or unreadable."""
    facts_path = Path(path).with_suffix(".json")
    try:
        data = json.loads(facts_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_saved_model(
    path: str | Path, *, name: str | None = None, fix: str | None = None
) -> InceptionV1:
    """Rebuild a model saved by :func:`save_model` (on the CPU; move it yourself).

    Raises a :class:`WeightsError` (exit 2) when the file is missing, not in the format, or
    its tensors do not fit its own architecture; ``fix`` says how to get a good file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            "no saved model file",
            where=str(path),
            expected="a model saved by generator.models.demo.save_model",
            fix=fix,
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt zip, pickle of other objects...
        raise WeightsError(f"cannot read the saved model: {err}", where=str(path), fix=fix) from err
    if not isinstance(payload, dict) or payload.get("format") != SAVED_FORMAT:
        raise WeightsError(
            "not a saved atlas model",
            where=str(path),
            expected=f"a dict with format={SAVED_FORMAT!r} (generator.models.demo.save_model)",
            got=repr(payload.get("format"))
            if isinstance(payload, dict)
            else type(payload).__name__,
            fix=fix,
        )
    if payload.get("version") != SAVED_VERSION:
        raise WeightsError(
            f"saved model version {payload.get('version')!r} is not supported",
            where=str(path),
            expected=f"version {SAVED_VERSION}",
            fix=fix,
        )
    try:
        config = InceptionConfig.from_dict(payload["architecture"])
        model = InceptionV1(
            config, name=name or str(payload["name"]), labels=list(payload["labels"])
        )
    except (AtlasError, KeyError, TypeError) as err:
        raise WeightsError(
            f"the saved architecture is invalid: {err}", where=str(path), fix=fix
        ) from err
    state = payload.get("state_dict") or {}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = mismatch_report(expected, {k: tuple(v.shape) for k, v in state.items()})
    if problems:
        raise WeightsError(
            "the saved weights do not fit the saved architecture",
            where=str(path),
            got="\n    ".join(["", *problems]),
            fix=fix,
        )
    model.load_state_dict(state, strict=True)
    model.weights_digest = file_digest(path)
    return model
