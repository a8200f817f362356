"""The cheap paths stay cheap and every edge is closed, on the real server (SECURITY.md's table):
completion limits read numbers as vLLM reads them, and only a real CORS preflight passes the gate
without the key; the UI's login form takes no key from another site's page, a logout ends its
session for every copy of the cookie, and the cookie is Secure behind a trusted TLS proxy."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from loadtest.server import ServerProcess
from tests.servers import tiny_server

from .conftest import API_KEY, METRICS_KEY

# Each over the server's default limits (n 4, logprobs 5, max_tokens 2048) once vLLM reads it
# as an integer; before the gate read them as vLLM does, these were answered 200.
OVER_THE_LIMITS = [
    ("/v1/completions", "n", "64"),
    ("/v1/completions", "best_of", 64.0),
    ("/v1/completions", "n", 5.0),
    ("/v1/completions", "logprobs", 20.0),
    ("/v1/chat/completions", "top_logprobs", 20.0),
]


@pytest.mark.parametrize(("path", "field", "value"), OVER_THE_LIMITS)
def test_completion_limits_hold_for_numbers_spelt_as_strings_or_floats(
    http: httpx.Client, path: str, field: str, value: object
) -> None:
    body: dict[str, Any] = {"model": "seqgpt", "max_tokens": 1, field: value}
    if path == "/v1/completions":
        body["prompt"] = "输入: 测试\n分类: 甲，乙\n输出: [GEN]"
    else:
        body |= {"messages": [{"role": "user", "content": "测试"}], "logprobs": True}
    response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


@pytest.mark.parametrize("path", ["/metrics", "/v1/models", "/v1/classify"])
def test_an_options_request_without_an_origin_is_no_preflight_and_needs_the_key(
    server: ServerProcess, path: str
) -> None:
    response = httpx.options(
        server.url + path, headers={"Access-Control-Request-Method": "GET"}, timeout=30
    )
    assert response.status_code == 401, response.text
    assert "vllm:" not in response.text  # not a line of the metrics exposition


def test_a_real_preflight_is_answered_by_cors_without_reaching_a_route(
    server: ServerProcess,
) -> None:
    """vLLM's CORS middleware answers it (its default grants no foreign origin: 400)."""
    headers = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"}
    response = httpx.options(server.url + "/metrics", headers=headers, timeout=30)
    assert response.status_code == 400
    assert "vllm:" not in response.text


def test_a_login_from_another_sites_page_is_refused(server: ServerProcess) -> None:
    url = server.url + "/ui/login"
    form = {"key": API_KEY}
    foreign = httpx.post(url, data=form, headers={"Origin": "http://evil.example"}, timeout=30)
    assert foreign.status_code == 403
    assert "set-cookie" not in foreign.headers
    own = httpx.post(url, data=form, headers={"Origin": server.url}, timeout=30)
    assert own.status_code == 303
    assert "seqgpt_ui=" in own.headers["set-cookie"]


def _log_in(url: str, **options: Any) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30, **options) as client:
        response = client.post("/ui/login", data={"key": API_KEY})
    assert response.status_code == 303, response.text
    return response


def _server_environ(server: ServerProcess) -> dict[str, str]:
    """The environment of the API server process (``python -m serving.entry``)."""
    for pid in server.processes():
        proc = Path(f"/proc/{pid}")
        if b"serving.entry" in (proc / "cmdline").read_bytes():
            pairs = (proc / "environ").read_bytes().split(b"\0")
            return dict(p.decode().partition("=")[::2] for p in pairs if b"=" in p)
    raise AssertionError("no API server process")


def test_a_logout_ends_the_session_for_every_copy_of_its_cookie(server: ServerProcess) -> None:
    """Copied elsewhere before the logout, the cookie is refused after it like no cookie: the
    page sends the browser to the login, the page's API calls get a 401."""
    cookie = {"Cookie": f"seqgpt_ui={_log_in(server.url).cookies['seqgpt_ui']}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=cookie) as browser:
        assert browser.get("/ui/").status_code == 200
        assert browser.get("/ui/config").status_code == 200
        logout = browser.get("/ui/logout")
        assert logout.status_code == 303
        assert logout.headers["location"] == "/ui/login"
    with httpx.Client(base_url=server.url, timeout=30, headers=cookie) as copy:
        page = copy.get("/ui/")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login"
        assert copy.get("/ui/config").status_code == 401
        join = copy.post("/ui/gradio_api/queue/join", json={})
        assert join.status_code == 401
        assert join.json()["error"]["type"] == "AuthenticationError"
    # kept where every API process of this server reads it: the launcher's private folder
    folder = Path(_server_environ(server)["SEQGPT_UI_SESSION_DIR"])
    assert folder.stat().st_mode & 0o777 == 0o700
    session = cookie["Cookie"].split(".")[1]
    assert session in json.loads((folder / "revoked.json").read_text(encoding="utf-8"))["ended"]


def test_a_trusted_proxy_saying_https_gets_a_secure_cookie(server: ServerProcess) -> None:
    """vLLM's uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (FORWARDED_ALLOW_IPS), not from
    another address (here 127.0.0.2, a loopback address uvicorn does not trust)."""
    https = {"X-Forwarded-Proto": "https"}
    assert "Secure" in _log_in(server.url, headers=https).headers["set-cookie"]
    assert "Secure" not in _log_in(server.url).headers["set-cookie"]
    untrusted = httpx.HTTPTransport(local_address="127.0.0.2")
    cookie = _log_in(server.url, headers=https, transport=untrusted).headers["set-cookie"]
    assert "Secure" not in cookie


OPEN_WARNING = "no API key is set and the server listens on"


def test_a_server_open_to_the_network_without_a_key_says_so_in_its_start_up_log(
    server: ServerProcess, tiny_model: Path, tmp_path: Path
) -> None:
    """One start-up line an operator cannot miss; the keyed server of this tier logs none."""
    log = tmp_path / "open.log"
    with tiny_server(tiny_model, extra_args=("--host", "0.0.0.0"), log_path=log):
        said = log.read_text(encoding="utf-8")
    assert f"{OPEN_WARNING} 0.0.0.0" in said
    assert server.log_path is not None
    assert OPEN_WARNING not in server.log_path.read_text(encoding="utf-8")


def _urllib(url: str, path: Path, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=path.read_bytes(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # the refusal, read like any answer
        return exc.code, json.loads(exc.read())


def _requests(url: str, path: Path, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = requests.post(url, data=path.read_bytes(), headers=headers, timeout=120)
    return response.status_code, response.json()


def _httpx(url: str, path: Path, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = httpx.post(url, content=path.read_bytes(), headers=headers, timeout=120)
    return response.status_code, response.json()


def _curl(url: str, path: Path, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    command = ["curl", "-sS", "--max-time", "120", "-o", "-", "-w", "\n%{http_code}"]
    command += [f"-H{name}: {value}" for name, value in headers.items()]
    out = subprocess.run(
        [*command, "--data-binary", f"@{path}", url], capture_output=True, text=True, check=True
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body)


CLIENTS = {"urllib": _urllib, "requests": _requests, "httpx": _httpx, "curl": _curl}
MB = 1_000_000


@pytest.fixture(scope="module", params=[5 * MB, 100 * MB], ids=["5MB", "100MB"])
def big_body(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bodies") / "body.json"
    with path.open("wb") as out:
        out.write(b'{"labels": ["a", "b"], "text": "')
        out.truncate(request.param)  # zeros: the size is what counts
    return path


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_an_oversize_body_gets_its_413_whatever_the_client(
    server: ServerProcess, big_body: Path, client: str
) -> None:
    """urllib and requests send the whole body before they read: a server that closed at once
    left them a reset connection or a broken pipe instead of the answer."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    status, body = CLIENTS[client](server.url + "/v1/classify", big_body, headers)
    assert status == 413
    assert body["error"]["type"] == "RequestTooLargeError"


@pytest.mark.parametrize("client", ["urllib", "requests"])
def test_an_anonymous_big_body_gets_its_401(
    server: ServerProcess, big_body: Path, client: str
) -> None:
    status, body = CLIENTS[client](server.url + "/v1/classify", big_body, {})
    assert status == 401
    assert body["error"]["type"] == "AuthenticationError"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/classify"), ("POST", "/v1/completions"), ("GET", "/ui/"), ("GET", "/v1/models")],
)
def test_the_metrics_key_reads_metrics_and_nothing_else(
    server: ServerProcess, method: str, path: str
) -> None:
    scraper = {"Authorization": f"Bearer {METRICS_KEY}"}
    metrics = httpx.get(server.url + "/metrics", headers=scraper, timeout=30)
    assert metrics.status_code == 200
    assert "vllm:num_requests_running" in metrics.text
    body = {"model": "seqgpt", "prompt": "x", "text": "x", "labels": ["a"]}
    refused = httpx.request(method, server.url + path, headers=scraper, json=body, timeout=30)
    assert refused.status_code == 403, refused.text
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
