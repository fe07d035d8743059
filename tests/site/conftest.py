"""Fixtures for the site tests: small projects written into a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sitekit import make_project

from generator.config import Config, load_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one publication, one article with an atlas, citations and a tour."""
    return make_project(tmp_path / "project")


@pytest.fixture
def config_of() -> Callable[[Path], Config]:
    """Load the atlas.toml of a project folder."""
    return lambda root: load_config(root / "atlas.toml")
