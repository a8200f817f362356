"""The front door: the outermost middleware of the app, ahead of everything vLLM adds.

Rules, in order, for every HTTP request:

0. **Draining.** While the server drains before a stop (``serving.http.lifecycle``), every request
   but ``/metrics`` gets a 503 with ``Retry-After``; requests already admitted are counted, so
   the drain knows when none is left.
1. **Key.** With any API key configured, every path needs ``Authorization: Bearer <key>``
   except the open (method, path) pairs (``GET /health``, ``GET``/``POST /ping``, the UI's login
   form, and ``GET /metrics`` when ``SEQGPT_PUBLIC_METRICS``); another method on an open path is
   a 405 with ``Allow``, key or not. This is deny-by-default: a route vLLM adds later is
   guarded without being named here (vLLM's own ``--api-key`` guards only ``/v1``). A CORS
   preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is let through,
   since the CORS middleware answers it without running any route; an ``OPTIONS`` without an
   ``Origin`` is no preflight (CORS would hand it on: vLLM's metrics app answers any method).
   The key names a tenant (``serving.core.tenancy``): the server's plain keys are ``default``
   (every scope), ``SEQGPT_METRICS_KEY`` is ``metrics`` (``GET /metrics`` alone), the tenants
   file adds the rest. A valid key outside its tenant's scopes is a 403. On the web UI's paths
   (``/ui`` and below) a browser may instead show the UI's session cookie (``serving.ui.auth``),
   which names its tenant and is worth nothing on any other path; a browser asking for the UI
   page without either is redirected to the UI's login form. Otherwise: 401. The request's
   tenant is put in ``scope["state"]["seqgpt_tenant"]`` (``request.state.seqgpt_tenant``).
1b. **Rate.** A tenant with limits takes a request token now, before its body is read, and is
   refused with a 429 and ``Retry-After`` when none is there or its prompt tokens are spent
   (``serving.core.ratelimits``, ``serving.http.metering``).
2. **Size and time.** A body over ``SEQGPT_MAX_BODY_BYTES`` (4 KiB on an open path) is a 413,
   decided from ``Content-Length`` before anything is read, or while reading a body sent without
   one; nothing is parsed. A body still arriving ``SEQGPT_BODY_TIMEOUT_S`` after the request
   began to be read is a 408 and the connection closes: a client trickling its body holds
   neither memory nor a drain for longer.

Every refusal here (401, 413, 503 while draining) reaches its client: the answer is sent, then the
rest of the body is read and dropped for up to ``SEQGPT_BODY_LINGER_S`` before the exchange ends.
3. **Load.** When a refusal does not depend on the body (``shed``: the task routes while the
   service's in-flight bound has no room for the tenant and level asking), it is answered as
   soon as the body is read, before it is parsed or routed: shedding load costs less than any
   request.
4. **Completion limits.** On the completion routes, ``max_tokens``, ``n``, ``best_of``,
   ``logprobs`` and ``top_logprobs`` over the server's limits are a 400.

Websocket requests that fail rule 1 are closed (policy violation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Protocol

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.contract.limits import CompletionLimits, completion_limit_error
from serving.core.errors import ServingError
from serving.core.ratelimits import Limiter
from serving.core.tenancy import ANY, Registry, permits, scope_of
from serving.core.tenants import Tenant
from serving.http.bodies import BodyTooLarge, json_or_none, read_body, refuse, replay_body
from serving.http.error_handlers import error_response
from serving.http.lifecycle import Drain
from serving.http.metering import BODY_BYTES_STATE, metered, over_limit
from serving.http.observe import TENANT_STATE
from serving.http.surface import OpenRoute

__all__ = ["COMPLETION_PATHS", "Gate", "SessionCheck"]

COMPLETION_PATHS = frozenset({"/v1/completions", "/v1/chat/completions", "/invocations"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_UNAUTHORIZED = "A valid API key is required: send the header 'Authorization: Bearer <key>'."
_OUT_OF_SCOPE = "This key's tenant {name!r} may not use this route (it needs the {scope!r} scope)."
_POLICY_VIOLATION = 1008
_GOING_AWAY = 1001
METRICS_PATH = "/metrics"
OPEN_BODY_BYTES = 4096
"""Largest body an open path takes (the UI's login form sends a key; a probe sends nothing)."""


class SessionCheck(Protocol):
    """A second credential on some paths: the web UI's session cookie (``serving.ui.auth``,
    handed in by the plugin, so this layer never imports the UI)."""

    def session_tenant(self, path: str, headers: Headers) -> Tenant | None:
        """The tenant of the session the request for ``path`` carries, if one valid there."""

    def login_redirect(self, scope: Scope, path: str) -> ASGIApp | None:
        """For a browser asking for a page without a session: where to send it, else None."""


class Gate:
    """Pure ASGI middleware applying the key, size and completion-limit rules."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Iterable[str],
        metrics_keys: Iterable[str] = (),
        open_paths: Iterable[OpenRoute],
        max_body_bytes: int,
        limits: CompletionLimits,
        drain: Drain,
        ui: SessionCheck | None = None,
        linger_s: float = 10.0,
        body_timeout_s: float = 60.0,
        shed: Callable[[Scope], ServingError | None] | None = None,
        registry: Registry | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.app = app
        self._shed = shed
        self._linger_s = linger_s
        self._body_timeout_s = body_timeout_s
        self._drain = drain
        self._ui = ui
        self._registry = registry or Registry(keys, metrics_keys)
        self._limiter = limiter or Limiter()
        self._open_routes = frozenset(open_paths)
        self._open_methods: dict[str, set[str]] = {}
        for method, open_path in self._open_routes:
            self._open_methods.setdefault(open_path, set()).add(method)
        self._max_body_bytes = max_body_bytes
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the rules, then hand the request on (with its body replayed, if read)."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if path == METRICS_PATH:  # readable while draining, guarded like any other path
            await self._guarded(scope, receive, send, path)
            return
        if self._drain.draining:
            await self._draining(scope, receive, send)
            return
        self._drain.active += 1
        try:
            await self._guarded(scope, receive, send, path)
        finally:
            self._drain.active -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        headers = Headers(scope=scope)
        allow = self._wrong_method(scope, path, headers)
        if allow is not None:  # an open path's other methods reach no route: say which do
            message = f"This route does not accept the {scope['method']} method."
            response = error_response(HTTPStatus.METHOD_NOT_ALLOWED, message)
            response.headers["Allow"] = allow
            await self._refuse(response, scope, receive, send)
            return
        tenant = self._tenant(scope, path, headers)
        needed = self._needed(scope, path, headers)
        if tenant is not None:  # named in the metrics and the log, even when refused
            scope.setdefault("state", {})[TENANT_STATE] = tenant
        if tenant is None or not permits(tenant, needed):
            await self._no_entry(scope, receive, send, path, tenant, needed)
            return
        limits = self._limiter.of(tenant) if scope["type"] == "http" else None
        if limits is None:
            await self._handle(scope, receive, send, path, headers)
            return
        wait = limits.admit()
        if wait > 0:
            await self._refuse(over_limit(tenant.name, wait, limits), scope, receive, send)
            return
        async with metered(scope, send, limits, path) as metered_send:
            await self._handle(scope, receive, metered_send, path, headers)

    async def _no_entry(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        tenant: Tenant | None,
        needed: str,
    ) -> None:
        """Refuse a request without a valid credential (401), or outside its scopes (403)."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
            return
        if tenant is not None:
            message = _OUT_OF_SCOPE.format(name=tenant.name, scope=needed)
            await self._refuse(error_response(HTTPStatus.FORBIDDEN, message), scope, receive, send)
            return
        login = self._ui.login_redirect(scope, path) if self._ui is not None else None
        if login is not None:
            await login(scope, receive, send)
            return
        response = error_response(HTTPStatus.UNAUTHORIZED, _UNAUTHORIZED)
        response.headers["WWW-Authenticate"] = "Bearer"
        await self._refuse(response, scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, headers: Headers
    ) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            await self._with_body(scope, receive, send, path, headers)
            return
        await self.app(scope, receive, send)

    def _wrong_method(self, scope: Scope, path: str, headers: Headers) -> str | None:
        """The ``Allow`` header for a request to an open path by a method it does not take."""
        methods = self._open_methods.get(path)
        if scope["type"] != "http" or methods is None or scope["method"] in methods:
            return None
        return None if _preflight(scope, headers) else ", ".join(sorted(methods))

    def _needed(self, scope: Scope, path: str, headers: Headers) -> str:
        """The scope a request needs (an open route or a CORS preflight: any key's)."""
        if (scope.get("method"), path) in self._open_routes or _preflight(scope, headers):
            return ANY
        return scope_of(str(scope.get("method", "GET")), path)

    def _tenant(self, scope: Scope, path: str, headers: Headers) -> Tenant | None:
        """The request's tenant: its key's, its UI session's, the default one where no key is
        needed; None when it shows no valid credential where one is needed."""
        registry = self._registry
        tenant = registry.lookup(_bearer(headers))
        if tenant is not None:
            return tenant
        if not registry.required or (scope.get("method"), path) in self._open_routes:
            return registry.default
        if _preflight(scope, headers):
            return registry.default  # a CORS preflight: the CORS middleware answers it
        return self._ui.session_tenant(path, headers) if self._ui is not None else None

    async def _with_body(
        self, scope: Scope, receive: Receive, send: Send, path: str, headers: Headers
    ) -> None:
        # An open path (a probe, the UI's login form) takes no body worth more than a few KiB.
        is_open = (scope["method"], path) in self._open_routes
        limit = min(self._max_body_bytes, OPEN_BODY_BYTES) if is_open else None
        limit = limit or self._max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit, body_ended=False)
            return
        try:
            async with asyncio.timeout(self._body_timeout_s):
                body = await read_body(receive, limit)
        except BodyTooLarge as exc:
            await self._too_large(scope, receive, send, limit, body_ended=exc.ended)
            return
        except TimeoutError:  # a client trickling its body: it holds memory and a drain
            message = f"The request body did not arrive within {self._body_timeout_s:g} s."
            response = error_response(HTTPStatus.REQUEST_TIMEOUT, message)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        if body is None:  # the client left while sending
            return
        scope.setdefault("state", {})[BODY_BYTES_STATE] = len(body)
        refusal = self._shed(scope) if self._shed is not None else None  # who asks, on which path
        if refusal is not None:
            response = error_response(refusal.status, str(refusal), retry_after=refusal.retry_after)
            await response(scope, receive, send)
            return
        if path in COMPLETION_PATHS:
            problem = completion_limit_error(json_or_none(body), self._limits)
            if problem is not None:
                message, field = problem
                await error_response(HTTPStatus.BAD_REQUEST, message, field)(scope, receive, send)
                return
        await self.app(scope, replay_body(body, receive), send)

    async def _draining(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": _GOING_AWAY})
            return
        message = "The server is shutting down; retry in a moment (another replica will answer)."
        response = error_response(HTTPStatus.SERVICE_UNAVAILABLE, message, retry_after=1)
        response.headers["Connection"] = "close"
        await self._refuse(response, scope, receive, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, limit: int, *, body_ended: bool
    ) -> None:
        message = f"The request body is larger than this server's limit of {limit} bytes."
        response = error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
        response.headers["Connection"] = "close"
        await self._refuse(response, scope, receive, send, body_ended=body_ended)

    async def _refuse(
        self,
        response: Response,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        body_ended: bool = False,
    ) -> None:
        """Answer with ``response``, then read and drop the rest of the body (``refuse``)."""
        await refuse(response, scope, receive, send, self._linger_s, body_ended=body_ended)


def _preflight(scope: Scope, headers: Headers) -> bool:
    """Whether the request is a CORS preflight (``OPTIONS`` with ``Origin`` and the method)."""
    wanted = {"origin", "access-control-request-method"}
    return scope.get("method") == "OPTIONS" and wanted <= set(headers.keys())


def _bearer(headers: Headers) -> str | None:
    """The bearer token the request sends, if it sends one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
