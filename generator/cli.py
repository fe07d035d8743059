"""The ``atlas`` command: parse arguments, call one function, turn AtlasErrors into exit codes.

Subcommands live beside the code they drive; each module listed in :data:`COMMAND_MODULES`
exposes ``register(subparsers)`` and keeps its heavy imports (torch, pyvips, umap) inside the
handlers, so ``atlas --help`` and the site commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from generator import __version__
from generator.errors import AtlasError, SetupError, storage_error

#: The compute extras (pyproject ``[compute]``): a command that imports one of them on an
#: install without them gets a clear error, not a traceback.
COMPUTE_PACKAGES = ("torch", "torchvision", "umap", "threadpoolctl", "numba", "sklearn")

#: Modules that add subcommands, in the order they appear in ``atlas --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "generator.site.commands",  # build, serve, check, new, deploy
    "generator.models.commands",  # models, weights
    "generator.models.train_commands",  # train-demo
    "generator.atlas.commands",  # compute
    "generator.freeze.commands",  # freeze
)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas",
        description="Build activation-atlas publications into a static site.",
    )
    parser.add_argument("--version", action="version", version=f"atlas {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="the project's atlas.toml (default: ./atlas.toml, else the nearest one above)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except AtlasError as err:
        print(f"error: {err.message()}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and the next run resumes", file=sys.stderr)
        return 130
    except OSError as err:  # a full, read-only or unwritable folder: say which
        storage = storage_error(err)
        if storage is None:
            raise
        print(f"error: {storage.message()}", file=sys.stderr)
        return storage.exit_code
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in COMPUTE_PACKAGES:
            raise
        missing = SetupError(
            f"`atlas {args.command}` needs the compute engine, and {err.name} is not installed",
            fix="install the compute extras: pip install -e '.[compute]'",
        )
        print(f"error: {missing.message()}", file=sys.stderr)
        return missing.exit_code
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
