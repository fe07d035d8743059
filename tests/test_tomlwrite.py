"""generator.tomlwrite: spec tables written as TOML parse back to the same tables."""

from __future__ import annotations

import tomllib

import pytest

from generator.tomlwrite import dump_toml


def test_tables_round_trip_with_inline_tables_arrays_and_table_arrays() -> None:
    tables = {
        "atlas": {
            "demo-4c": {
                "title": 'Say "hi" \\ ünïcode',
                "samples": 400,
                "whiten": False,
                "grids": [10, 20],
                "render": {"preset": "tiny", "lr": 0.15},
            }
        },
        "experiment": {
            "p": {"seed": 0, "pairs": [{"source": "a b", "icon": {"atlas": "x"}}]},
        },
    }
    text = dump_toml(tables)
    assert "[[experiment.p.pairs]]" in text
    assert tomllib.loads(text) == tables


def test_a_value_toml_cannot_hold_is_an_error() -> None:
    with pytest.raises(ValueError, match="no TOML for None"):
        dump_toml({"atlas": {"x": {"image": None}}})
