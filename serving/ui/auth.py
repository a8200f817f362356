"""How a browser proves it holds an API key for the web UI: a login form and a signed cookie.

A browser cannot send ``Authorization: Bearer``, so the gate (``serving.http.gate``) accepts a
second credential on the UI's paths only:

- ``GET /ui/login`` serves a small form of our own (no Gradio); ``POST /ui/login`` with one of
  the server's keys sets the cookie ``seqgpt_ui`` and redirects to ``/ui/``. A wrong key gets
  the form again with a 401. The login page is the one open path under ``/ui``.
- The cookie is ``<expiry>.<session>.<HMAC-SHA256(secret, "seqgpt-ui:<expiry>.<session>.<d>")>``,
  the session a random 128-bit id and ``d`` the SHA-256 of the key that logged in, so the cookie
  names its tenant (the server finds it by checking the signature against each tenant's
  digest) and dies with its key (rotating a key logs its browsers out). The secret is the
  server's own, never a key and never the digest the tenants file holds (anyone who reads the
  file could then forge a cookie): 32 random bytes in ``SEQGPT_UI_SESSION_DIR/ui-secret``
  (``0600``), made by the first API process and read by the others (``seqgpt-serve serve``
  always sets the folder); without the folder, one derived from the server's plain keys, or a
  random one per process when there is none. It holds no key and cannot be forged without the
  secret; it expires after ``SESSION_S`` seconds. It is
  ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page can send it, so no
  cross-site request forgery), ``Path=/ui``, and ``Secure`` when the request came over HTTPS:
  uvicorn, which vLLM runs with proxy headers on, takes the scheme from ``X-Forwarded-Proto``
  when the peer is a trusted proxy (its ``FORWARDED_ALLOW_IPS``, by default ``127.0.0.1,::1``).
- Logging in takes a key whose tenant has the ``ui`` scope: another valid key gets a 403 in the
  common error body, a wrong one the form again with a 401. A session whose tenant loses the
  ``ui`` scope (the tenants file changed) is refused like none.
- ``GET`` or ``POST /ui/logout`` ends the session on the server, not only in this browser: its id
  joins the list of ended sessions that every API process of the server reads
  (``serving.ui.revocations``, which says why a shared file and how it stays small), so the same
  cookie sent again, from anywhere, is refused like none. Sessions end with the server too: a
  server started again refuses the cookies issued before it (``SEQGPT_UI_SESSION_DIR`` names a
  folder that outlives it, to keep them).
- The gate honours it on ``/ui`` and below only: it opens no other route. A browser that asks
  for the page without it is sent to the login form.
- ``POST /ui/login`` from another site's page is refused (403 in the common error body): a browser
  names the page's origin in ``Origin``, which must be this server's own (its ``Host``, or the
  ``X-Forwarded-Host`` of a proxy in front of it), so no
  other site can log a visitor in with a key of its choosing. A client that sends no ``Origin``
  (not a browser, or one that predates it) is not refused for that.

With no key configured the UI is open like every other route, and the login page redirects to
the UI.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from serving.core.errors import error_body
from serving.core.ratelimits import over_limit_message
from serving.core.tenancy import Registry
from serving.core.tenants import Tenant
from serving.ui.login_page import login_page
from serving.ui.revocations import Revocations
from serving.ui.secret import server_secret

__all__ = [
    "COOKIE",
    "LOGIN_PATH",
    "LOGIN_ROUTES",
    "LOGOUT_PATH",
    "SESSION_S",
    "UI_PATH",
    "UiSessions",
    "is_ui_path",
    "login_router",
]

UI_PATH = "/ui"
LOGIN_PATH = UI_PATH + "/login"
"""The login form: open without a key (it asks for one); the plugin tells the gate so."""
LOGIN_ROUTES = frozenset({("GET", LOGIN_PATH), ("POST", LOGIN_PATH)})
"""The (method, path) pairs of the login form, the open ones while the UI is served."""
LOGOUT_PATH = "/ui/logout"
COOKIE = "seqgpt_ui"
SESSION_S = 12 * 3600
_CONTEXT = "seqgpt-ui:"
_MAX_KEY_CHARS = 4096
_SESSION_HEX = 32  # 128 random bits

logger = logging.getLogger(__name__)


def is_ui_path(path: str) -> bool:
    """Whether ``path`` is the UI or under it."""
    return path == UI_PATH or path.startswith(UI_PATH + "/")


class UiSessions:
    """Issues, checks and ends the UI's session cookies for the tenants of ``registry`` (else
    the plain ``keys``); ended sessions and the signing secret are kept in ``folder``, shared
    with the server's other API processes (None: this one's)."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        lifetime_s: int = SESSION_S,
        folder: Path | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        keys = [key for key in keys if key]
        self._registry = registry or Registry(keys)
        self._lifetime_s = lifetime_s
        self._ended = Revocations(folder, lifetime_s)
        self._secret = server_secret(folder, keys)

    @property
    def required(self) -> bool:
        """Whether a key is configured, so the UI needs a login."""
        return self._registry.required

    def tenant_of(self, key: str) -> Tenant | None:
        """The tenant whose key ``key`` is (None: no tenant's)."""
        return self._registry.lookup(key)

    def issue(self, key: str, now: float | None = None) -> str | None:
        """A cookie value for a new session if ``key`` is a key with the ``ui`` scope, else None."""
        tenant = self._registry.lookup(key)
        if tenant is None or "ui" not in tenant.scopes:
            return None
        expiry = int(now if now is not None else time.time()) + self._lifetime_s
        session = secrets.token_hex(_SESSION_HEX // 2)
        return f"{expiry}.{session}.{self._sign(tenant.key_sha256, expiry, session)}"

    def valid(self, cookie: str, now: float | None = None) -> bool:
        """Whether ``cookie`` was issued for a key the server knows, has not expired and was
        not ended."""
        return self.tenant_of_cookie(cookie, now) is not None

    def tenant_of_cookie(self, cookie: str, now: float | None = None) -> Tenant | None:
        """The tenant of a valid, unexpired, not ended ``cookie`` whose tenant still has the
        ``ui`` scope, else None."""
        signed = self._signed(cookie, now)
        if signed is None or self._ended.ended(signed[0], signed[1], now=now):
            return None
        return signed[2] if "ui" in signed[2].scopes else None

    def end(self, cookie: str, now: float | None = None) -> bool:
        """End the session of a valid ``cookie`` for every API process; whether there was one.
        ``OSError`` if the end cannot be recorded (the session then stays valid)."""
        signed = self._signed(cookie, now)
        if signed is None or self._ended.ended(signed[0], signed[1], now=now):
            return False
        self._ended.end(signed[0], signed[1], now)
        return True

    def _signed(self, cookie: str, now: float | None) -> tuple[str, int, Tenant] | None:
        """The session, expiry and tenant of ``cookie`` if it is signed for a tenant's key and
        has not expired (ended or not), else None."""
        expiry_text, _, rest = cookie.partition(".")
        session, _, signature = rest.partition(".")
        if not expiry_text.isascii() or not expiry_text.isdigit() or len(expiry_text) > 12:
            return None
        if len(session) != _SESSION_HEX or not all(c in "0123456789abcdef" for c in session):
            return None
        expiry = int(expiry_text)
        if expiry <= (now if now is not None else time.time()):
            return None
        presented = signature.encode("utf-8", "surrogatepass")
        found: Tenant | None = None
        for key_hash, tenant in self._registry.entries():  # every one: constant time
            expected = self._sign(key_hash.hex(), expiry, session).encode()
            if hmac.compare_digest(presented, expected):
                found = tenant
        return (session, expiry, found) if found is not None else None

    def _sign(self, key_sha256: str, expiry: int, session: str) -> str:
        message = f"{_CONTEXT}{expiry}.{session}.{key_sha256}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def session_tenant(self, path: str, headers: Headers) -> Tenant | None:
        """The tenant of the valid UI cookie a request for ``path`` carries, if it may use it
        there (under ``/ui`` only)."""
        if not is_ui_path(path):
            return None
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        return self.tenant_of_cookie(cookie) if cookie is not None else None

    def admits(self, path: str, headers: Headers) -> bool:
        """Whether a request for ``path`` carries a valid UI cookie and may use it there."""
        return self.session_tenant(path, headers) is not None

    def login_redirect(self, scope: Scope, path: str) -> Response | None:
        """For a browser asking for the UI page without a session: a redirect to the login."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        if path not in (UI_PATH, UI_PATH + "/"):
            return None
        root = str(scope.get("root_path", ""))
        return RedirectResponse(root + LOGIN_PATH, status_code=HTTPStatus.SEE_OTHER)


login_router = APIRouter(include_in_schema=False)


def _sessions(request: Request) -> UiSessions:
    sessions: UiSessions = request.app.state.seqgpt_ui_sessions
    return sessions


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _ui_url(request: Request) -> str:
    return _root(request) + UI_PATH + "/"


@login_router.get(LOGIN_PATH)
async def login_form(request: Request) -> Response:
    """The login form (or the UI itself when no key is configured)."""
    if not _sessions(request).required:
        return RedirectResponse(_ui_url(request), status_code=HTTPStatus.SEE_OTHER)
    return HTMLResponse(login_page(""))


@login_router.post(LOGIN_PATH)
async def login(request: Request) -> Response:
    """Check the key sent by the form; on success set the session cookie and go to the UI."""
    sessions = _sessions(request)
    if not sessions.required:
        return RedirectResponse(_ui_url(request), status_code=HTTPStatus.SEE_OTHER)
    if not _same_origin(request.headers):
        message = "The login form only accepts a key sent from this server's own page."
        body = error_body(HTTPStatus.FORBIDDEN, message, "Origin")
        return JSONResponse(body, status_code=HTTPStatus.FORBIDDEN)
    try:
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:  # more fields than a login form has
        form = {}
    key = (form.get("key") or [""])[0].strip()
    tenant = sessions.tenant_of(key) if 0 < len(key) <= _MAX_KEY_CHARS else None
    if tenant is None:
        message = "密钥不正确 The key is not valid."
        return HTMLResponse(login_page(message), status_code=HTTPStatus.UNAUTHORIZED)
    limiter = getattr(request.app.state, "seqgpt_limiter", None)  # a login is one of its requests
    limits = limiter.of(tenant) if limiter is not None else None
    wait = limits.admit() if limits is not None else 0.0
    if limits is not None and wait > 0:
        message, seconds = over_limit_message(tenant.name, wait)
        body = error_body(HTTPStatus.TOO_MANY_REQUESTS, message)
        headers = {"Retry-After": str(seconds)} | {
            k.decode(): v.decode() for k, v in limits.headers()
        }
        return JSONResponse(body, status_code=HTTPStatus.TOO_MANY_REQUESTS, headers=headers)
    cookie = sessions.issue(key)
    if cookie is None:  # a tenant's key without the ui scope
        message = f"The key's tenant {tenant.name!r} may not log in to the web UI (scope 'ui')."
        body = error_body(HTTPStatus.FORBIDDEN, message, "key")
        return JSONResponse(body, status_code=HTTPStatus.FORBIDDEN)
    response = RedirectResponse(_ui_url(request), status_code=HTTPStatus.SEE_OTHER)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=SESSION_S,
        path=UI_PATH,
        secure=_https(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _same_origin(headers: Headers) -> bool:
    """Whether the request's ``Origin``, if it has one, is this server: its ``Host``, or the
    ``X-Forwarded-Host`` a proxy in front of it names (another site's form can set neither)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    forwarded = headers.get("x-forwarded-host", "").split(",")[0]
    ours = {name.strip().lower() for name in (headers.get("host", ""), forwarded)} - {""}
    return urlsplit(origin).netloc.lower() in ours


@login_router.get(LOGOUT_PATH)
@login_router.post(LOGOUT_PATH)
async def logout(request: Request) -> Response:
    """End the session on the server (for every API process), forget its cookie in this
    browser and show the login form."""
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        try:  # a file write under a lock: off the event loop
            await run_in_threadpool(_sessions(request).end, cookie)
        except OSError as exc:
            logger.error("seqgpt: a UI session could not be ended: %s", exc)
            message = "The session could not be ended on the server; try again."
            body = error_body(HTTPStatus.INTERNAL_SERVER_ERROR, message)
            return JSONResponse(body, status_code=HTTPStatus.INTERNAL_SERVER_ERROR)
    response = RedirectResponse(_root(request) + LOGIN_PATH, status_code=HTTPStatus.SEE_OTHER)
    response.delete_cookie(
        COOKIE, path=UI_PATH, secure=_https(request), httponly=True, samesite="strict"
    )
    return response


def _https(request: Request) -> bool:
    """Whether the request came over HTTPS (uvicorn reads a trusted proxy's X-Forwarded-Proto)."""
    return request.url.scheme == "https"
