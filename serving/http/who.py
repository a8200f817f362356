"""Whom a task request's work is for (``serving.core.tenants.Who``), from its ASGI scope.

The gate resolves the request's key to its tenant and leaves it in ``scope["state"]`` under
``TENANT_STATE`` (absent or None: the server's own keys, the tenant ``default``). The work is
batch work on a ``/batch`` route, for a tenant whose ``priority`` is ``batch``, or when the
request says ``X-SeqGPT-Priority: batch``: a request may lower its work to batch, never raise a
batch tenant's. Any other value of the header is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving.core.errors import InvalidInputError
from serving.core.tenants import DEFAULT_TENANT, PRIORITIES, PRIORITY_HEADER, Tenant, Who, is_batch

__all__ = ["HEADER_NAME", "TENANT_STATE", "who_of"]

TENANT_STATE = "seqgpt_tenant"
"""The key of ``scope["state"]`` under which the gate leaves a request's ``Tenant``."""
HEADER_NAME = "X-SeqGPT-Priority"


def _header(scope: Mapping[str, Any]) -> str | None:
    wanted = PRIORITY_HEADER.encode("latin-1")
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            return bytes(value).decode("latin-1").strip().lower()
    return None


def who_of(scope: Mapping[str, Any], *, batch_route: bool = False) -> Who:
    """The ``Who`` of the request whose scope this is (a 400 for a bad priority header)."""
    header = _header(scope)
    if header is not None and header not in PRIORITIES:
        message = f"{HEADER_NAME} is one of {', '.join(PRIORITIES)}; {header[:40]!r} was sent."
        raise InvalidInputError(message, parameter=HEADER_NAME)
    state = scope.get("state") or {}
    tenant: Tenant | None = state.get(TENANT_STATE)
    if tenant is None:
        return Who(DEFAULT_TENANT, 1.0, is_batch("interactive", header, batch_route))
    return Who(tenant.name, tenant.weight, is_batch(tenant.priority, header, batch_route))
