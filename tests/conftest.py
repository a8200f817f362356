"""Marks every test by its folder tier (unit, api, e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS = {"unit": pytest.mark.unit, "api": pytest.mark.api, "e2e": pytest.mark.e2e}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the marker of the tier folder a test lives in."""
    for item in items:
        tier = Path(item.fspath).parent.name
        if tier in _TIERS:
            item.add_marker(_TIERS[tier])
