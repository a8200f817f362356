"""Every number of the settings is finite, and every duration in seconds has an upper bound: an
endless timeout (``inf``, ``1e400``) would switch off the defence it sets (slow clients, the
drain, a request's deadline). The fields are enumerated from the model, so a new one is covered."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from annotated_types import Le, Lt
from pydantic import ValidationError

from serving.core.settings import Settings
from serving.process.launcher import settings_errors

NOT_FINITE = ["inf", "-inf", "Infinity", "nan", "1e400", "-1e400"]


def _numeric(annotation: Any) -> bool:
    """Whether a field holds an int or a float (optional or not)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_numeric(arg) for arg in typing.get_args(annotation))
    return annotation in (int, float)


NUMERIC = sorted(name for name, f in Settings.model_fields.items() if _numeric(f.annotation))
SECONDS = sorted(name for name in Settings.model_fields if name.endswith("_s"))


def _env(name: str) -> str:
    return f"SEQGPT_{name.upper()}"


def _upper_bound(name: str) -> float | None:
    for item in Settings.model_fields[name].metadata:
        if isinstance(item, Le):
            return float(item.le)  # type: ignore[arg-type]
        if isinstance(item, Lt):
            return float(item.lt)  # type: ignore[arg-type]
    return None


def test_the_tables_found_the_fields() -> None:
    assert {"body_linger_s", "body_timeout_s", "request_timeout_s", "drain_timeout_s"} <= set(
        SECONDS
    )
    assert set(SECONDS) <= set(NUMERIC)
    assert "max_body_bytes" in NUMERIC


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", NOT_FINITE)
def test_no_number_may_be_infinite_or_nan(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_env(name), value)
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("name", SECONDS)
def test_every_duration_has_a_finite_upper_bound(name: str) -> None:
    bound = _upper_bound(name)
    assert bound is not None, f"{_env(name)} has no upper bound"
    default = Settings.model_fields[name].default
    assert default <= bound
    assert settings_errors({_env(name): str(bound)}) == []
    (line,) = settings_errors({_env(name): str(bound * 10)})
    assert line.startswith(f"error: {_env(name)}=")


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize("value", ["inf", "1e400", "nan"])
def test_the_launcher_names_an_endless_duration_in_one_line(name: str, value: str) -> None:
    (line,) = settings_errors({_env(name): value})
    assert line.startswith(f"error: {_env(name)}={value!r}: ")
    assert "finite" in line, line
    assert "\n" not in line
