"""``atlas models`` and ``atlas weights fetch``: what models exist here, and getting weights.

Heavy imports (torch, torchvision) happen inside the handlers, so ``atlas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from generator.errors import ConfigError


def register(subparsers: Any) -> None:
    models = subparsers.add_parser(
        "models",
        help="list the models, their layers and whether their weights are here",
        description="List the built-in and configured ([models.*] in atlas.toml) models: "
        "their layers (channels, spatial size at the default input) and whether their "
        "weights are available on this machine.",
    )
    models.add_argument("names", nargs="*", metavar="NAME", help="only these models")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=run_models)

    weights = subparsers.add_parser("weights", help="download model weights")
    actions = weights.add_subparsers(dest="weights_command", metavar="ACTION")
    actions.required = True
    fetch = actions.add_parser(
        "fetch",
        help="download a model's published weights (needs internet; checksum checked)",
        description="Download the weights of NAME (inceptionv1, googlenet, "
        "torchvision:<architecture>) to $ATLAS_WEIGHTS_DIR, else $TORCH_HOME/hub/checkpoints, "
        "where model loading looks for them.",
    )
    fetch.add_argument("name", metavar="NAME")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    fetch.set_defaults(func=run_fetch)


def project_models(config_path: str | None) -> tuple[dict[str, dict[str, Any]], Path | None]:
    """The ``[models.*]`` tables of the project's atlas.toml and its folder (none: empty)."""
    try:
        from generator.config import find_config, load_config
    except ImportError:  # the site half's config module is absent: built-in models only
        return {}, None
    try:
        path = find_config(config_path)
    except ConfigError:
        if config_path is not None:
            raise
        return {}, None
    config = load_config(path)
    return dict(config.models), config.root


def _size(size: int) -> str:
    return "1" if size == 1 else f"{size}x{size}"


def format_descriptions(descriptions: list[Any]) -> str:
    """The text ``atlas models`` prints: one block per model, a layer table under each."""
    blocks = []
    for d in descriptions:
        lines = [f"{d.name}  ({d.summary})"]
        if d.status == "error":
            lines.append(f"  error: {d.note}")
            blocks.append("\n".join(lines))
            continue
        where = f" {d.weights}" if d.weights else ""
        lines.append(
            f"  input {d.input_size} px, {d.num_classes} classes; weights: {d.status}{where}"
        )
        if d.note:
            lines.append(f"  {'fix' if d.status == 'missing' else 'note'}: {d.note}")
        lines.append(f"  {'layer':<10} {'channels':>8}  size")
        for info in d.layers:
            lines.append(f"  {info.name:<10} {info.channels:>8}  {_size(info.size)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def run_models(args: argparse.Namespace) -> int:
    from generator.models.registry import describe_models

    tables, root = project_models(args.config)
    descriptions = describe_models(tables, base_dir=root, names=args.names or None)
    if args.json:
        out = [
            {
                "name": d.name,
                "kind": d.kind,
                "summary": d.summary,
                "input_size": d.input_size,
                "num_classes": d.num_classes,
                "weights": str(d.weights) if d.weights else None,
                "status": d.status,
                "note": d.note,
                "layers": [[i.name, i.channels, i.size] for i in d.layers],
            }
            for d in descriptions
        ]
        print(json.dumps(out, indent=1))
    else:
        print(format_descriptions(descriptions))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from generator.models.model_spec import resolve_spec
    from generator.models.registry import fetch_model_weights, weight_source

    tables, root = project_models(args.config)
    spec = resolve_spec(args.name, tables, base_dir=root)
    source = weight_source(spec)
    if source is not None:
        print(f"{spec.name}: {source.url}", file=sys.stderr)
        if source.note:
            print(f"  ({source.note})", file=sys.stderr)
    path, downloaded = fetch_model_weights(spec, force=args.force)
    state = "downloaded to" if downloaded else "already present at"
    print(f"{spec.name}: weights {state} {path}")
    return 0
