"""Load a model by name: find its weights, build it, check the weights fit, hand it over frozen.

``load_model("inceptionv1", device=torch.device("cuda"))`` returns an :class:`AtlasModel` in
eval mode with ``requires_grad`` off on every parameter and ``weights_digest`` set from the
weights file, so every cache downstream is keyed on the exact weights.

Where weights come from (see :mod:`generator.models.model_spec` for the lookup order):

* ``inceptionv1``: a Lucid-format file, found locally or fetched by ``atlas weights fetch``;
* ``googlenet`` and ``torchvision:<arch>``: a local file, else torchvision's published file,
  downloaded on first use into ``$TORCH_HOME/hub/checkpoints`` (progress shown, checksum
  checked);
* ``demo``: the committed ``generator/models/weights/demo.pt``;
* user models: whatever their entry point loads.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generator.cache import file_digest
from generator.errors import AtlasError, WeightsError
from generator.models.base import AtlasModel, LayerInfo
from generator.models.demo import (
    DEMO_FIX,
    build_demo_model,
    demo_config,
    load_saved_model,
    read_saved_facts,
)
from generator.models.fetch import download
from generator.models.formats import FORMATS, convert_state_dict, load_in_format
from generator.models.hooked import HookedModel, UserModel
from generator.models.inception import (
    LUCID,
    TORCHVISION,
    InceptionConfig,
    InceptionV1,
    build_inceptionv1,
    probe_layer_infos,
)
from generator.models.labels import lucid_labels
from generator.models.model_spec import (
    BUILTINS,
    DEMO_WEIGHTS,
    GOOGLENET_SOURCE,
    LUCID_SOURCE,
    RANDOM_WEIGHTS,
    ModelSpec,
    WeightSource,
    default_places,
    fetch_destination,
    find_weights,
    model_specs,
    parse_model_spec,
)


def weight_source(spec: ModelSpec) -> WeightSource | None:
    """Where ``spec``'s published weights can be downloaded from (None: not downloadable)."""
    if spec.kind == "inceptionv1":
        return LUCID_SOURCE
    if spec.kind == "googlenet":
        return GOOGLENET_SOURCE
    if spec.kind == "torchvision":
        from generator.models.torchvision_models import torchvision_source

        return torchvision_source(str(spec.arch), spec.weights_name or "DEFAULT")
    return None


def _places(spec: ModelSpec) -> list[tuple[Path, str]]:
    if spec.kind == "demo":
        return [(DEMO_WEIGHTS, "committed demo weights")]
    source = weight_source(spec)
    return default_places(source.filename) if source else []


def _fix(spec: ModelSpec) -> str:
    if spec.kind == "demo":
        return DEMO_FIX
    return (
        f"run `atlas weights fetch {spec.name}` (needs internet), or set"
        f' `weights = "/path/to/file"` under [models.{spec.name}] in atlas.toml, or put the'
        " file in $ATLAS_WEIGHTS_DIR"
    )


def locate_weights(
    spec: ModelSpec, explicit: str | Path | None = None, *, download_missing: bool = False
) -> Path:
    """The weights file of ``spec``; downloads torchvision's when ``download_missing``.

    Raises a :class:`WeightsError` (exit 2) naming every place looked at and the fix.
    """
    lookup = find_weights(spec, _places(spec), explicit)
    if lookup.found is not None:
        return lookup.found
    source = weight_source(spec)
    if download_missing and source is not None and spec.kind in ("googlenet", "torchvision"):
        return download(source, fetch_destination(source.filename))
    expected = FORMATS["lucid"] if spec.kind == "inceptionv1" else f"the weights of {spec.name}"
    raise WeightsError(
        f"no weights for model {spec.name!r}",
        where="looked at " + (lookup.describe() or "nothing"),
        expected=expected,
        fix=_fix(spec),
    )


def _read_state(path: Path, spec: ModelSpec) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(
            f"cannot read the weights file: {err}", where=str(path), fix=_fix(spec)
        ) from err


def _inception(spec: ModelSpec, path: Path | None) -> InceptionV1:
    state = _read_state(path, spec) if path is not None else None  # fail fast on a bad file
    if spec.kind == "inceptionv1":
        model = build_inceptionv1(LUCID, name=spec.name, labels=lucid_labels())
        fmt = "lucid"
    else:
        from generator.models.torchvision_models import torchvision_categories

        model = build_inceptionv1(TORCHVISION, name=spec.name, labels=torchvision_categories())
        fmt = "torchvision"
    if path is not None:
        load_in_format(model, state, fmt, where=str(path), fix=_fix(spec))
        model.weights_digest = file_digest(path)
    return model


def _user_model(spec: ModelSpec) -> AtlasModel:
    module_name, _, function_name = str(spec.entry).partition(":")
    where = f"{spec.where} entry = {spec.entry!r}"
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as err:
        raise AtlasError(
            f"cannot import the model entry point: {err}",
            where=where,
            expected='"package.module:function" importable from this Python environment',
            fix="install the package that defines it (pip install -e ...) or fix the name",
            exit_code=2,
        ) from err
    result = function(**spec.options)
    if isinstance(result, AtlasModel):
        result.name = spec.name
        return result
    if not isinstance(result, UserModel):
        raise AtlasError(
            f"the entry point returned a {type(result).__name__}",
            where=where,
            expected="a generator.models.hooked.UserModel (or an AtlasModel)",
            exit_code=2,
        )
    digest = file_digest(result.weights_file) if result.weights_file else None
    return HookedModel(
        result.module,
        result.layers,
        result.preprocess,
        result.labels,
        name=spec.name,
        input_size=result.input_size,
        weights_digest=digest,
    )


def load_model(
    spec: ModelSpec | str,
    *,
    device: torch.device,
    weights: str | Path | None = None,
    download_missing: bool = True,
) -> AtlasModel:
    """Build model ``spec`` with its weights on ``device``: eval mode, no parameter gradients.

    Args:
        spec: a parsed spec or a built-in name (``"inceptionv1"``, ``"torchvision:resnet50"``).
        device: where the model lives (nothing is chosen for you).
        weights: a weights file that overrides the lookup, or ``"random"`` for seeded random
            weights (benchmarks and tests).
        download_missing: let googlenet/torchvision weights download on first use.

    Raises :class:`WeightsError` (exit 2) for missing or unfitting weights and
    :class:`~generator.errors.UnknownNameError` for an unknown model.
    """
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    random = weights == RANDOM_WEIGHTS or (weights is None and spec.weights == RANDOM_WEIGHTS)
    explicit = None if random else weights

    def path() -> Path | None:
        if random:
            return None
        return locate_weights(spec, explicit, download_missing=download_missing)

    model: AtlasModel
    if spec.kind in ("inceptionv1", "googlenet"):
        model = _inception(spec, path())
    elif spec.kind == "demo":
        if random:
            # The architecture the committed weights have: one logit per class of the world.
            from generator.data.world import CLASS_NAMES

            model = build_demo_model(CLASS_NAMES, name=spec.name)
        else:
            model = load_saved_model(locate_weights(spec, explicit), name=spec.name, fix=DEMO_FIX)
    elif spec.kind == "torchvision":
        from generator.models.torchvision_models import build_torchvision_classifier

        file = path()
        digest = file_digest(file) if file is not None else None
        model = build_torchvision_classifier(spec, weights_file=file, weights_digest=digest)
    else:
        model = _user_model(spec)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


def check_weights_file(spec: ModelSpec, path: Path) -> None:
    """Raise a :class:`WeightsError` unless ``path`` holds tensors that fit ``spec``'s model
    (keys and shapes). Used on fetched files before they are moved into place."""
    if spec.kind in ("inceptionv1", "googlenet"):
        fmt = "lucid" if spec.kind == "inceptionv1" else "torchvision"
        config = LUCID if fmt == "lucid" else TORCHVISION
        model = InceptionV1(config, name=spec.name)
        convert_state_dict(model, _read_state(path, spec), fmt, where=str(path), fix=_fix(spec))
    elif spec.kind == "torchvision":
        from generator.models.torchvision_models import build_torchvision_classifier

        build_torchvision_classifier(spec, weights_file=path, meta=True)


@dataclass(frozen=True)
class ModelDescription:
    """What ``atlas models`` shows about one model.

    Attributes:
        name, kind, summary: the model and a one-line description.
        input_size, num_classes: its defaults.
        layers: named layers with channels and spatial side at ``input_size``.
        weights: the weights file found here, or None.
        status: "found", "missing", "downloads on first use", "random", "from the entry point"
            or "error".
        note: the fix for missing weights, or the error.
    """

    name: str
    kind: str
    summary: str
    input_size: int
    num_classes: int
    layers: tuple[LayerInfo, ...]
    weights: Path | None
    status: str
    note: str = ""


def _shape_facts(spec: ModelSpec) -> tuple[int, int, tuple[LayerInfo, ...]]:
    """``(input size, class count, layers)`` of ``spec``'s architecture, from a forward on the
    meta device (no weights are read). User models are built by their entry point."""
    if spec.kind in ("inceptionv1", "googlenet", "demo"):
        config = LUCID if spec.kind == "inceptionv1" else TORCHVISION
        if spec.kind == "demo":
            facts = read_saved_facts(locate_demo_facts(spec))
            arch = facts.get("architecture") if facts else None
            if isinstance(arch, dict):
                config = InceptionConfig.from_dict(arch)
            else:
                from generator.data.world import CLASS_NAMES

                config = demo_config(len(CLASS_NAMES))
        return config.input_size, config.num_classes, probe_layer_infos(config)
    if spec.kind == "torchvision":
        from generator.models.torchvision_models import build_torchvision_classifier

        model: AtlasModel = build_torchvision_classifier(spec, weights_file=None, meta=True)
    else:
        model = _user_model(spec)
    return model.input_size, len(model.labels), model.layer_infos


def locate_demo_facts(spec: ModelSpec) -> Path:
    """The demo weights file whose ``.json`` describes the architecture (may not exist)."""
    return Path(str(spec.weights)) if spec.weights_is_file else DEMO_WEIGHTS


def describe_model(spec: ModelSpec) -> ModelDescription:
    """Architecture facts and weight availability of one model (no weights are loaded)."""
    summary = BUILTINS.get(spec.kind, "")
    if spec.kind == "torchvision":
        summary = f"torchvision {spec.arch}"
    elif spec.kind == "entry":
        summary = f"user model {spec.entry}"
    try:
        input_size, num_classes, layers = _shape_facts(spec)
    except Exception as err:  # a broken user model must not hide the others
        what = err.what if isinstance(err, AtlasError) else f"{type(err).__name__}: {err}"
        return ModelDescription(spec.name, spec.kind, summary, 0, 0, (), None, "error", what)
    weights: Path | None = None
    note = ""
    if spec.kind == "entry":
        status = "from the entry point"
    elif spec.weights == RANDOM_WEIGHTS:
        status = "random"
    else:
        try:
            weights = find_weights(spec, _places(spec)).found
        except WeightsError as err:
            status, note = "missing", f"{err.where}; {err.fix}"
        else:
            if weights is not None:
                status = "found"
            elif spec.kind in ("googlenet", "torchvision"):
                status = "downloads on first use"
                note = f"or run `atlas weights fetch {spec.name}` now (needs internet)"
            else:
                status, note = "missing", _fix(spec)
    return ModelDescription(
        name=spec.name,
        kind=spec.kind,
        summary=summary,
        input_size=input_size,
        num_classes=num_classes,
        layers=layers,
        weights=weights,
        status=status,
        note=note,
    )


def describe_models(
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    base_dir: str | Path | None = None,
    names: list[str] | None = None,
) -> list[ModelDescription]:
    """Describe the built-in and configured models (or only ``names``)."""
    specs = model_specs(tables, base_dir=base_dir)
    for name in names or []:
        if name not in specs:
            specs[name] = parse_model_spec(name)
    chosen = names or list(specs)
    return [describe_model(specs[name]) for name in chosen]


def fetch_model_weights(spec: ModelSpec, *, force: bool = False) -> tuple[Path, bool]:
    """Download ``spec``'s published weights to where lookups find them.

    Returns ``(path, downloaded)``; an existing file is kept (after a checksum check when one
    is pinned) unless ``force``.
    """
    source = weight_source(spec)
    if source is None:
        fix = DEMO_FIX if spec.kind == "demo" else "the entry point loads its own weights"
        raise WeightsError(
            f"model {spec.name!r} has no published weights to download",
            expected="inceptionv1, googlenet or torchvision:<architecture>",
            fix=fix,
        )
    dest = fetch_destination(source.filename)
    if dest.is_file() and not force:
        from generator.models.fetch import check_digest, sha256_of

        check_digest(sha256_of(dest), source, where=str(dest))
        check_weights_file(spec, dest)
        return dest, False
    return download(source, dest, validate=lambda tmp: check_weights_file(spec, tmp)), True
