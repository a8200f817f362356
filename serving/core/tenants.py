"""Tenants: who a request is for, what its key may do, and how much of the server it may take.

A tenant is one team's named key, read from the TOML file ``SEQGPT_TENANTS_FILE`` names. The file
never holds a key, only its SHA-256::

    [tenants.search]
    key_sha256 = "9f86d0…"            # hex SHA-256 of the tenant's key
    scopes = ["tasks", "completions"] # any of: tasks, completions, metrics, ui
    requests_per_minute = 600         # optional
    prompt_tokens_per_minute = 200000 # optional
    weight = 2                        # share under contention, default 1
    priority = "interactive"          # or "batch"; default interactive

The server's plain API keys (``VLLM_API_KEY``, ``--api-key``, ``SEQGPT_API_KEYS``) are the tenant
``default`` with every scope and no limit; ``SEQGPT_METRICS_KEY`` is the tenant ``metrics`` with
the ``metrics`` scope alone.

``Who`` is what the front door hands on to admission for one request: its tenant, the tenant's
weight, and whether the request is batch work (``is_batch``).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "DEFAULT_TENANT",
    "METRICS_TENANT",
    "PRIORITIES",
    "PRIORITY_HEADER",
    "SCOPES",
    "Priority",
    "ScopeName",
    "Tenant",
    "TenantsFileError",
    "Who",
    "is_batch",
    "key_digest",
    "parse_tenants",
    "read_tenants_file",
]

ScopeName = Literal["tasks", "completions", "metrics", "ui"]
SCOPES: tuple[str, ...] = get_args(ScopeName)
Priority = Literal["interactive", "batch"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
PRIORITY_HEADER = "x-seqgpt-priority"
"""A request's own priority (``interactive`` or ``batch``): a tenant may lower its work to batch,
never raise it above its tenant's priority."""
DEFAULT_TENANT = "default"
METRICS_TENANT = "metrics"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""A tenant's name: a metric label value, a log field, a TOML key (lowercase, no dots)."""
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FILE_BYTES = 1 << 20
"""Largest tenants file read (a file is read on the event loop when it changes: keep it small)."""


class TenantsFileError(ValueError):
    """A tenants file that cannot be used: its one-line reason."""


class Tenant(BaseModel):
    """One tenant of the file (``name`` is its table's key)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    key_sha256: str
    scopes: frozenset[ScopeName] = Field(min_length=1)
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    prompt_tokens_per_minute: Annotated[int, Field(ge=1)] | None = None
    weight: float = Field(default=1.0, gt=0, le=1000)
    priority: Priority = "interactive"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("a name is 1-63 of a-z, 0-9, '_', '-', from a letter or digit")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _hash(cls, value: str) -> str:
        if not _HEX_SHA256.fullmatch(value.lower()):
            raise ValueError("key_sha256 is the 64 hex digits of the key's SHA-256, not a key")
        return value.lower()

    @property
    def limited(self) -> bool:
        """Whether the tenant has a rate limit (its answers then carry the rate-limit headers)."""
        return self.requests_per_minute is not None or self.prompt_tokens_per_minute is not None


@dataclass(frozen=True)
class Who:
    """Whom one request's work is for, as admission sees it."""

    tenant: str = DEFAULT_TENANT
    weight: float = 1.0
    batch: bool = False


def key_digest(key: str) -> str:
    """The hex SHA-256 the file holds for ``key``."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def is_batch(tenant_priority: str, header: str | None, batch_route: bool) -> bool:
    """Whether a request is batch work: a batch route, a batch tenant, or a request that says
    ``X-SeqGPT-Priority: batch`` (checked by the caller to be one of ``PRIORITIES``)."""
    return batch_route or tenant_priority == "batch" or header == "batch"


def parse_tenants(text: str) -> dict[str, Tenant]:
    """The tenants of a file's text, by name; ``TenantsFileError`` with one line if unusable
    (bad TOML, an unknown field, a bad value, two tenants with one key)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TenantsFileError(f"not TOML: {exc}") from None
    unknown = set(document) - {"tenants"}
    if unknown:
        raise TenantsFileError(f"unknown table {sorted(unknown)[0]!r}: the file holds [tenants.*]")
    tables: Any = document.get("tenants", {})
    if not isinstance(tables, dict):
        raise TenantsFileError("'tenants' must be a table of tables ([tenants.NAME])")
    tenants: dict[str, Tenant] = {}
    owners: dict[str, str] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise TenantsFileError(f"tenants.{name} must be a table")
        try:
            tenant = Tenant(name=name, **table)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"] if part != "name")
            field = f".{where}" if where else ""
            raise TenantsFileError(f"tenants.{name}{field}: {error['msg']}") from None
        if tenant.key_sha256 in owners:
            other = owners[tenant.key_sha256]
            raise TenantsFileError(f"tenants.{name} has the same key as tenants.{other}")
        owners[tenant.key_sha256] = name
        tenants[name] = tenant
    if DEFAULT_TENANT in tenants or METRICS_TENANT in tenants:
        raise TenantsFileError(
            f"the names {DEFAULT_TENANT!r} and {METRICS_TENANT!r} belong to the server's own keys"
        )
    return tenants


def read_tenants_file(path: Path) -> dict[str, Tenant]:
    """The tenants of the file at ``path``; ``TenantsFileError`` with one line if it cannot be
    read or used (missing, unreadable, over ``MAX_FILE_BYTES``, not UTF-8, or refused by
    ``parse_tenants``)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TenantsFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise TenantsFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TenantsFileError(f"{path} is not UTF-8 text") from None
    try:
        return parse_tenants(text)
    except TenantsFileError as exc:
        raise TenantsFileError(f"{path}: {exc}") from None
