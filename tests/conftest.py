"""Marks every test by its folder tier (unit, api, e2e, deploy, ui, loadtest); the tiny test
checkpoint, made once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight checkpoint made by the real CLI (seconds; nonsense answers)."""
    from loadtest.server import ensure_model

    return ensure_model(tmp_path_factory.mktemp("models") / "tiny", "tiny")


_TIERS = {
    "unit": pytest.mark.unit,
    "api": pytest.mark.api,
    "e2e": pytest.mark.e2e,
    "deploy": pytest.mark.deploy,
    "ui": pytest.mark.ui,
    "loadtest": pytest.mark.loadtest,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the marker of the tier folder a test lives in (``tests/<tier>/...``)."""
    tests = Path(__file__).parent
    for item in items:
        tier = Path(item.fspath).relative_to(tests).parts[0]
        if tier in _TIERS:
            item.add_marker(_TIERS[tier])
