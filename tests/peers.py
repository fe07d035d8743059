"""Peers the tests compare against (torch-lucent, axe-core): skipped where missing, except in
CI, which installs them all."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as ``.ci/run`` runs on a clean clone)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_peer(message: str) -> NoReturn:
    """Skip a test whose peer (a reference library, a browser asset) is not installed, except
    in CI, where ``make test`` installs every peer: there a missing one fails the test, so a
    broken install can never pass as a run of skipped checks."""
    if in_ci():
        pytest.fail(f"{message} (CI installs it: a missing peer is a failure there)")
    pytest.skip(message)
