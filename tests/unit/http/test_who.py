"""``who_of``: a request's tenant, weight and level from its scope (the gate's tenant, the
priority header, the route)."""

from __future__ import annotations

from typing import Any

import pytest

from serving.core.errors import InvalidInputError
from serving.core.tenants import Tenant, Who
from serving.http.who import TENANT_STATE, who_of


def _scope(header: str | None = None, tenant: Tenant | None = None) -> dict[str, Any]:
    headers = [(b"x-seqgpt-priority", header.encode())] if header is not None else []
    return {"type": "http", "headers": headers, "state": {TENANT_STATE: tenant}}


def _tenant(priority: str = "interactive") -> Tenant:
    return Tenant(
        name="data", key_sha256="0" * 64, scopes=frozenset({"tasks"}), weight=3, priority=priority
    )


def test_without_a_tenant_the_request_is_the_default_tenants_interactive_work() -> None:
    assert who_of({"type": "http", "headers": []}) == Who("default", 1.0, False)
    assert who_of(_scope("batch")) == Who("default", 1.0, True)
    assert who_of(_scope(), batch_route=True) == Who("default", 1.0, True)


def test_a_tenant_may_lower_its_work_to_batch_never_raise_it() -> None:
    assert who_of(_scope(None, _tenant())) == Who("data", 3.0, False)
    assert who_of(_scope(" BATCH ", _tenant())) == Who("data", 3.0, True)
    assert who_of(_scope("interactive", _tenant("batch"))) == Who("data", 3.0, True)


@pytest.mark.parametrize("value", ["urgent", "", "0"])
def test_any_other_priority_is_a_400_naming_the_header(value: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        who_of(_scope(value))
    assert refused.value.parameter == "X-SeqGPT-Priority"
