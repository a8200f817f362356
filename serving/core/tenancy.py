"""Who a key belongs to, and what it may reach: the tenants registry and the routes' scopes.

- **Registry.** The server's plain API keys (``--api-key``, ``VLLM_API_KEY``,
  ``SEQGPT_API_KEYS``) are the tenant ``default`` (every scope, no limit);
  ``SEQGPT_METRICS_KEY`` is the tenant ``metrics`` (the ``metrics`` scope alone); the file
  ``SEQGPT_TENANTS_FILE`` names adds the teams' tenants (``serving.core.tenants``). A presented
  bearer key is hashed (SHA-256) and compared with every tenant's digest, constant time in the
  key. The file is re-read when it changes (its mtime, size and inode), looked at no more than
  once a second per API process, by the request that comes after that second: a change holds
  within a second or two in every process, with no restart. A file that turns bad (or goes
  away) leaves the last good set in place and logs one line per bad version, not per request.
  With ``SEQGPT_TENANTS_FILE`` set a key is always required, even while the file lists no
  tenant: emptying the file never opens the server.
- **Scopes.** ``scope_of`` says what a (method, path) needs: ``tasks`` (the task routes and
  ``/v1/status``), ``completions`` (vLLM's OpenAI routes, ``/invocations``, the tokenizer),
  ``metrics`` (``/metrics``), ``ui`` (the web UI under ``/ui``; its login form checks the
  scope itself). The API docs, ``/version`` and ``/load`` take any valid key (``ANY``): they
  show nothing of anyone's data. Every other route (those ``SEQGPT_ENABLE_ROUTES`` adds, or
  vLLM adds later) takes a key with every scope (``EVERY``): an admin's key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from serving.core.tenants import (
    DEFAULT_TENANT,
    METRICS_TENANT,
    SCOPES,
    Tenant,
    TenantsFileError,
    read_tenants_file,
)

__all__ = ["ANY", "EVERY", "Registry", "digest", "scope_of", "tenant_of_keys"]

logger = logging.getLogger(__name__)

ANY = "any"
"""A route any valid key may reach."""
EVERY = "every"
"""A route only a key with every scope may reach."""
_SCOPE_OF_PATH = {
    "/v1/classify": "tasks",
    "/v1/extract": "tasks",
    "/v1/classify/batch": "tasks",
    "/v1/extract/batch": "tasks",
    "/v1/status": "tasks",
    "/v1/completions": "completions",
    "/v1/chat/completions": "completions",
    "/v1/models": "completions",
    "/invocations": "completions",
    "/tokenize": "completions",
    "/detokenize": "completions",
    "/metrics": "metrics",
    "/version": ANY,
    "/load": ANY,
    "/docs": ANY,
    "/docs/oauth2-redirect": ANY,
    "/redoc": ANY,
    "/openapi.json": ANY,
}
_METRICS_METHODS = frozenset({"GET", "HEAD"})
_CHECK_EVERY_S = 1.0
_Stat = tuple[int, int, int]
_NEVER: _Stat = (-1, -1, -1)


def scope_of(method: str, path: str) -> str:
    """The scope a request needs: one of ``SCOPES``, ``ANY`` or ``EVERY``."""
    if path == "/ui" or path.startswith("/ui/"):
        return "ui"
    scope = _SCOPE_OF_PATH.get(path, EVERY)
    if scope == "metrics" and method not in _METRICS_METHODS:
        return EVERY  # the metrics scope reads; it never posts
    return scope


def permits(tenant: Tenant, scope: str) -> bool:
    """Whether ``tenant`` may reach a route needing ``scope``."""
    if scope == ANY:
        return True
    if scope == EVERY:
        return tenant.scopes >= set(SCOPES)
    return scope in tenant.scopes


def digest(key: str) -> bytes:
    """The SHA-256 of a key, as bytes."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def tenant_of_keys(name: str, keys: Iterable[str], scopes: Iterable[str]) -> list[Tenant]:
    """The server's own tenant ``name``, one entry per key (the plain keys may be several)."""
    return [
        Tenant(name=name, key_sha256=digest(key).hex(), scopes=frozenset(scopes))  # type: ignore[arg-type]
        for key in dict.fromkeys(keys)
        if key
    ]


class Registry:
    """Every tenant the server knows, by key digest; the file's part re-read when it changes."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        metrics_keys: Iterable[str] = (),
        path: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``TenantsFileError`` if the file at ``path`` cannot be used now (at start-up)."""
        self._own = [
            *tenant_of_keys(DEFAULT_TENANT, keys, SCOPES),
            *tenant_of_keys(METRICS_TENANT, metrics_keys, ["metrics"]),
        ]
        self.default = self._own[0] if self._own else _open_default()
        self._path = path
        self._clock = clock
        self._checked = clock()
        self._stat: _Stat | None = None
        self._bad: _Stat | None = _NEVER  # the bad version last logged (None: the file gone)
        self._file: list[Tenant] = []
        if path is not None:
            self._stat = _stat(path)
            self._file = list(read_tenants_file(path).values())
            self._check_own_keys(self._file)
        self._rebuild()

    @property
    def required(self) -> bool:
        """Whether a key is needed: a plain key is set, or a tenants file is named."""
        return self._path is not None or any(t.name == DEFAULT_TENANT for t in self._own)

    @property
    def tenants(self) -> dict[str, Tenant]:
        """Every tenant by name (the default one once, with its first key)."""
        self.refresh()
        named: dict[str, Tenant] = {}
        for tenant in self._entries:
            named.setdefault(tenant.name, tenant)
        return named

    def entries(self) -> list[tuple[bytes, Tenant]]:
        """Every (key digest, tenant) pair, the default tenant once per plain key."""
        self.refresh()
        return self._digests

    def lookup(self, key: str | None) -> Tenant | None:
        """The tenant whose key ``key`` is, compared with every tenant's: constant time in the
        key; None for no key or an unknown one."""
        entries = self.entries()
        if key is None:
            return None
        presented = digest(key)
        found: Tenant | None = None
        for key_hash, tenant in entries:
            if secrets.compare_digest(presented, key_hash):
                found = tenant
        return found

    def refresh(self) -> None:
        """Re-read the file if it changed since it was last looked at (at most once a second)."""
        now = self._clock()
        if self._path is None or now - self._checked < _CHECK_EVERY_S:
            return
        self._checked = now
        try:
            stat: _Stat | None = _stat(self._path)
        except TenantsFileError:
            stat = None
        if stat == self._stat or stat == self._bad:  # unchanged, or the bad version logged
            return
        try:
            tenants = list(read_tenants_file(self._path).values())
            self._check_own_keys(tenants)
        except TenantsFileError as exc:
            logger.error("seqgpt: tenants file not reloaded, the last good one holds: %s", exc)
            self._bad = stat
            return
        self._stat, self._bad, self._file = stat, _NEVER, tenants
        self._rebuild()
        logger.info("seqgpt: tenants file reloaded: %d tenants", len(tenants))

    def _check_own_keys(self, tenants: list[Tenant]) -> None:
        own = {t.key_sha256 for t in self._own}
        for tenant in tenants:
            if tenant.key_sha256 in own:
                raise TenantsFileError(f"tenants.{tenant.name} has a key of the server's own")

    def _rebuild(self) -> None:
        self._entries = [*self._own, *self._file]
        self._digests = [(bytes.fromhex(t.key_sha256), t) for t in self._entries]


def _open_default() -> Tenant:
    """The default tenant of a server with no plain key: a digest no key has (all zero)."""
    return Tenant(name=DEFAULT_TENANT, key_sha256="0" * 64, scopes=frozenset(SCOPES))  # type: ignore[arg-type]


def _stat(path: Path) -> _Stat:
    try:
        found = os.stat(path)
    except OSError as exc:
        raise TenantsFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return (found.st_mtime_ns, found.st_size, found.st_ino)
