"""A missing peer (torch-lucent, axe-core) skips a test on a developer's machine, but fails it
in CI, where ``make test`` installs every peer."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped
from peers import missing_peer


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_peer_fails_in_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(Failed, match=r"lucent is missing.*a missing peer is a failure"):
        missing_peer("lucent is missing")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_peer_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(Skipped, match="lucent is missing"):
        missing_peer("lucent is missing")
