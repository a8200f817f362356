"""What is open without a key is a (method, path) pair, and every refusal of a path or a method
is in the common error body: the UI's login exists only with the UI, another method on an open
path is a 405 with ``Allow``, an unknown path under ``/ui`` a 404 (not Gradio's ``detail``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

KEY = "open-paths-key"
KEYED = {"Authorization": f"Bearer {KEY}"}


def _error(response: Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == status
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def with_ui() -> TestClient:
    # Built once for the module: the UI (Gradio) costs ~0.5 s to build.
    from serving.core.settings import Settings
    from tests.api.conftest import build_app
    from tests.api.fake_engine import FakeEngine

    app = build_app(FakeEngine(), Settings(max_text_chars=200, ui=True), [KEY])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("headers", [{}, KEYED], ids=["anonymous", "keyed"])
def test_without_the_ui_there_is_no_login_and_no_500(
    make_client: Callable[..., TestClient], method: str, headers: dict[str, str]
) -> None:
    client = make_client([KEY])  # the tier's settings: the UI off
    response = client.request(method, "/ui/login", headers=headers, follow_redirects=False)
    _error(response, 404 if headers else 401)
    assert not [r for r in client.app.routes if getattr(r, "path", "").startswith("/ui")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("headers", [{}, KEYED], ids=["anonymous", "keyed"])
def test_another_method_on_the_open_login_is_a_405_naming_the_open_ones(
    with_ui: TestClient, method: str, headers: dict[str, str]
) -> None:
    response = with_ui.request(method, "/ui/login", headers=headers, content=b"key=x")
    error = _error(response, 405)
    assert method in str(error["message"])
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(("method", "path"), [("POST", "/health"), ("PUT", "/ping")])
def test_another_method_on_a_probe_is_a_405_without_the_key(
    make_client: Callable[..., TestClient], method: str, path: str
) -> None:
    response = make_client([KEY]).request(method, path)
    _error(response, 405)
    assert "GET" in response.headers["allow"]


def test_the_login_still_opens_without_the_key(with_ui: TestClient) -> None:
    assert with_ui.get("/ui/login").status_code == 200
    wrong = with_ui.post("/ui/login", data={"key": "wrong"}, follow_redirects=False)
    assert wrong.status_code == 401  # the form again, not the gate's refusal
    assert "<form" in wrong.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/ui/no-such-page", 404), ("DELETE", "/ui/config", 405)],
)
def test_unknown_paths_and_methods_under_the_ui_answer_in_the_common_body(
    with_ui: TestClient, method: str, path: str, status: int
) -> None:
    response = with_ui.request(method, path, headers=KEYED)
    _error(response, status)
    if status == 405:
        assert response.headers["allow"] == "GET"
