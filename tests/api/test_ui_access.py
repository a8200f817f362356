"""Who may use the web UI: the gate, the login form and the session cookie, with the real UI
mounted (over the fake engine). Every route under /ui is walked without and with credentials;
a logout ends the session for every copy of its cookie, in every API process."""

from __future__ import annotations

import asyncio
import logging
import re
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import State
from starlette.routing import Mount
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serving.core.settings import Settings
from serving.plugin import SeqGPTPlugin
from serving.ui.app import GRADIO_ROUTES

KEY = "ui-access-key"
BEARER = {"Authorization": f"Bearer {KEY}"}

MakeClient = Callable[..., TestClient]
# Event streams that stay open once admitted (the e2e walk reads only their status).
STREAMS = {"/ui/gradio_api/heartbeat/x", "/ui/gradio_api/queue/data"}


@pytest.fixture
def guarded(make_client: MakeClient) -> TestClient:
    return make_client([KEY], ui=True)


def _ui_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the mounted UI serves, path parameters filled in."""
    app_routes = client.app.routes  # type: ignore[attr-defined]
    (mount,) = [r for r in app_routes if isinstance(r, Mount) and r.path == "/ui"]
    routes = []
    for route in mount.app.routes:  # type: ignore[attr-defined]
        path = "/ui" + re.sub(r"\{[^}]+\}", "x", route.path)
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        routes.append(("GET" if "GET" in methods else methods[0], path))
    return sorted(set(routes))


def _log_in(client: TestClient, key: str = KEY) -> dict[str, str]:
    """Log in; the session cookie as a header (the client's own jar is left empty)."""
    response = client.post("/ui/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return _cookie(str(response.cookies["seqgpt_ui"]))


def _cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"seqgpt_ui={value}"}


def test_every_ui_route_needs_the_key_or_the_cookie(guarded: TestClient) -> None:
    routes = _ui_routes(guarded)
    assert ("POST", "/ui/gradio_api/queue/join") in routes
    cookie = _log_in(guarded)
    for method, path in routes:
        anonymous = guarded.request(method, path, follow_redirects=False)
        if path == "/ui/":
            assert anonymous.status_code == 303, path
            assert anonymous.headers["location"] == "/ui/login"
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        forged = _cookie("9999999999.00")
        refused = guarded.request(method, path, headers=forged, follow_redirects=False)
        assert refused.status_code == anonymous.status_code, path
        for credentials in (BEARER, cookie) if path not in STREAMS else ():
            answered = guarded.request(method, path, headers=credentials, follow_redirects=False)
            assert answered.status_code != 401, (method, path, credentials)


def test_the_ui_serves_only_the_routes_its_page_uses(guarded: TestClient) -> None:
    served = {path for _, path in _ui_routes(guarded)}
    assert served == {"/ui" + re.sub(r"\{[^}]+\}", "x", p) for p in GRADIO_ROUTES}
    for path in ("/ui/gradio_api/upload", "/ui/gradio_api/file=/etc/passwd", "/ui/monitoring"):
        assert guarded.post(path, headers=BEARER).status_code == 404, path
        assert guarded.get(path, headers=BEARER).status_code in (404, 405), path


def test_the_cookie_opens_nothing_outside_the_ui(guarded: TestClient) -> None:
    cookie = _log_in(guarded)
    assert guarded.get("/ui/config", headers=cookie).status_code == 200
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/metrics"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/classify"),
        ("POST", "/v1/completions"),
    ]:
        assert guarded.request(method, path, headers=cookie).status_code == 401, path


def test_the_login_sets_a_strict_http_only_cookie_for_the_right_key(
    guarded: TestClient,
) -> None:
    form = guarded.get("/ui/login")
    assert form.status_code == 200
    assert 'name="key"' in form.text
    wrong = guarded.post("/ui/login", data={"key": "wrong"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert "The key is not valid." in wrong.text
    assert "set-cookie" not in wrong.headers
    right = guarded.post("/ui/login", data={"key": KEY}, follow_redirects=False)
    assert right.headers["location"] == "/ui/"
    cookie = right.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure
    assert KEY not in cookie


@pytest.mark.parametrize(
    "body",
    [b"", b"key=", b"a=1&b=2&c=3&d=4&e=5&key=" + KEY.encode(), b"key=" + b"k" * 4000, b"\xff\xfe"],
)
def test_a_malformed_login_is_a_401_page(guarded: TestClient, body: bytes) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = guarded.post("/ui/login", content=body, headers=headers, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


def test_a_login_form_over_4_kib_is_a_413_before_it_is_read(guarded: TestClient) -> None:
    """The login form is open to anyone: it takes a key, not megabytes."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"key=" + b"k" * 5000
    response = guarded.post("/ui/login", content=body, headers=headers, follow_redirects=False)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "RequestTooLargeError"
    assert "4096 bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://testserver.evil.example", "http://"]
)
def test_a_login_from_another_sites_page_is_a_403_and_sets_no_cookie(
    guarded: TestClient, origin: str
) -> None:
    headers = {"Origin": origin}
    response = guarded.post("/ui/login", data={"key": KEY}, headers=headers, follow_redirects=False)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "ForbiddenError"
    assert response.json()["error"]["param"] == "Origin"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://testserver"},  # TestClient's Host
        {"Origin": "https://seqgpt.example.com", "X-Forwarded-Host": "seqgpt.example.com"},
        {},  # no Origin: not a browser's cross-site form
    ],
    ids=["host", "behind-a-proxy", "no-origin"],
)
def test_a_login_from_this_servers_own_page_is_let_in(
    guarded: TestClient, headers: dict[str, str]
) -> None:
    response = guarded.post("/ui/login", data={"key": KEY}, headers=headers, follow_redirects=False)
    assert response.status_code == 303
    assert "seqgpt_ui=" in response.headers["set-cookie"]


def test_over_https_the_cookie_is_secure(make_client: MakeClient) -> None:
    client = make_client([KEY], ui=True)
    client.base_url = "https://testserver"  # type: ignore[assignment]
    response = client.post("/ui/login", data={"key": KEY}, follow_redirects=False)
    assert "Secure" in response.headers["set-cookie"]


def test_behind_a_trusted_proxy_the_cookie_is_secure(make_client: MakeClient) -> None:
    """uvicorn (vLLM runs it with proxy headers on) takes the scheme from X-Forwarded-Proto when
    the peer is a trusted proxy (FORWARDED_ALLOW_IPS, 127.0.0.1 and ::1 by default)."""
    client = make_client([KEY], ui=True)
    app = ProxyHeadersMiddleware(client.app, trusted_hosts="127.0.0.1,::1")  # uvicorn's default
    https = {"X-Forwarded-Proto": "https"}
    for peer, secure in ((("127.0.0.1", 5000), True), (("203.0.113.9", 5000), False)):
        with TestClient(app, client=peer) as proxied:
            response = proxied.post(
                "/ui/login", data={"key": KEY}, headers=https, follow_redirects=False
            )
        assert response.status_code == 303
        assert ("Secure" in response.headers["set-cookie"]) is secure, peer


def test_logging_out_forgets_the_cookie(guarded: TestClient) -> None:
    guarded.post("/ui/login", data={"key": KEY})
    assert guarded.get("/ui/config").status_code == 200
    response = guarded.get("/ui/logout", follow_redirects=False)
    assert response.headers["location"] == "/ui/login"
    assert guarded.get("/ui/config").status_code == 401


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_after_a_logout_a_copied_cookie_is_refused(guarded: TestClient, method: str) -> None:
    """The cookie ends on the server, not only in the browser that logged out."""
    cookie, other = _log_in(guarded), _log_in(guarded)
    assert guarded.get("/ui/config", headers=cookie).status_code == 200
    response = guarded.request(method, "/ui/logout", headers=cookie, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    assert 'seqgpt_ui=""' in response.headers["set-cookie"]
    page = guarded.get("/ui/", headers=cookie, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login"
    for refused_method, path in [("GET", "/ui/config"), ("POST", "/ui/gradio_api/queue/join")]:
        refused = guarded.request(refused_method, path, headers=cookie)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["type"] == "AuthenticationError"
    assert guarded.get("/ui/config", headers=other).status_code == 200  # another session lives


def test_a_logout_in_one_api_process_holds_in_the_other(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Two apps, each with its own plugin, share the launcher's folder as vLLM's API server
    processes do."""
    first, second = (make_client([KEY], ui=True, ui_session_dir=tmp_path) for _ in range(2))
    cookie = _log_in(first)
    assert second.get("/ui/config", headers=cookie).status_code == 200
    assert second.get("/ui/logout", headers=cookie, follow_redirects=False).status_code == 303
    assert first.get("/ui/config", headers=cookie).status_code == 401
    assert second.get("/ui/config", headers=cookie).status_code == 401


@pytest.mark.parametrize(
    ("shared", "count", "warned"), [(False, 2, True), (False, None, False), (True, 2, False)]
)
def test_several_api_processes_without_a_shared_folder_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, shared: bool, count: int | None, warned: bool
) -> None:
    """Plain vLLM, not the launcher: each API process would keep its own list of logouts."""
    plugin = SeqGPTPlugin(Settings(ui=True, ui_session_dir=tmp_path if shared else None))
    args = Namespace(api_key=[KEY], api_server_count=count, host="127.0.0.1")
    logger = logging.getLogger("serving.plugin")  # it may not propagate (it logs like vLLM)
    logger.addHandler(caplog.handler)
    try:
        asyncio.run(plugin.init_state(None, State(), args))  # no engine: no UI mounted
    finally:
        logger.removeHandler(caplog.handler)
    assert ("SEQGPT_UI_SESSION_DIR is not set" in caplog.text) is warned


def test_a_logout_that_cannot_be_recorded_says_so_and_keeps_the_session(
    guarded: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    cookie = _log_in(guarded)
    monkeypatch.setattr("serving.ui.revocations.Revocations.end", full)
    response = guarded.get("/ui/logout", headers=cookie, follow_redirects=False)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "InternalServerError"
    assert "could not be ended" in response.json()["error"]["message"]
    assert "set-cookie" not in response.headers  # still logged in: the user may try again
    assert guarded.get("/ui/config", headers=cookie).status_code == 200


def test_without_a_key_the_ui_is_open(make_client: MakeClient) -> None:
    client = make_client([], ui=True)
    assert client.get("/ui/").status_code == 200
    assert client.get("/ui/config").status_code == 200
    login = client.get("/ui/login", follow_redirects=False)
    assert login.status_code == 303
    assert login.headers["location"] == "/ui/"


def test_with_the_ui_off_nothing_is_served_under_ui(make_client: MakeClient) -> None:
    client = make_client([KEY], ui=False)
    assert client.get("/ui/", headers=BEARER).status_code == 404
    # The login is open only with the UI: without it, its path is any unknown one.
    assert client.get("/ui/login").status_code == 401
    assert client.post("/ui/login", data={"key": KEY}).status_code == 401
    assert client.post("/ui/login", data={"key": KEY}, headers=BEARER).status_code == 404
