"""``--cluster`` and ``--cluster-workers`` of ``atlas compute`` and ``atlas build``: they
replace ``[compute] cluster`` and ``cluster_workers`` for one run."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generator.config import Config


def add_cluster_options(parser: Any) -> None:
    """Add both options to an argparse (sub)parser."""
    parser.add_argument(
        "--cluster",
        type=_cluster,
        default=None,
        metavar="none|local|auto|ADDRESS",
        help="collect activations, render icons and run patch experiments on Ray: local (one worker per GPU, or per CPU core), auto (local "
        'with more than one GPU), or a cluster address such as "ray://head:10001" '
        "(default: [compute] cluster, none)",
    )
    parser.add_argument(
        "--cluster-workers",
        type=_positive,
        default=None,
        metavar="N",
        help="Ray workers (default: [compute] cluster_workers, else one per GPU or CPU core)",
    )


def with_cluster_options(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the options given on the command line in place of ``[compute]``'s."""
    changes = {
        name: value
        for name, value in (("cluster", args.cluster), ("cluster_workers", args.cluster_workers))
        if value is not None
    }
    if not changes:
        return config
    return dataclasses.replace(config, compute=dataclasses.replace(config.compute, **changes))


def _cluster(text: str) -> str:
    from generator.config import SCHEMA

    check = next(key.check for key in SCHEMA["compute"] if key.name == "cluster")
    try:
        return str(check(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected {err}, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value
