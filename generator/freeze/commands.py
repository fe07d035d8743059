"""``atlas freeze``: write computed results into the frozen folder, to be committed."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "freeze",
        help="write computed atlases and experiments to the frozen folder (_freeze/) for git",
        description="Write what the site needs of each computed atlas and patch experiment"
        " (no activations) into [paths] freeze (default _freeze/), with a manifest of what"
        " produced it and the digest of every file. Commit the folder: a machine without the"
        " compute engine (GitHub Actions) then builds the site from it.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="atlas or experiment ids to freeze")
    p.add_argument(
        "--all",
        dest="everything",
        action="store_true",
        help="freeze every computed atlas and experiment, and remove entries no longer declared",
    )
    p.set_defaults(func=cmd_freeze)


def cmd_freeze(args: argparse.Namespace) -> int:
    from generator.config import load_config
    from generator.freeze.run import freeze

    freeze(load_config(args.config), args.ids, everything=args.everything)
    return 0
