"""The web UI's session cookie: issued for a key only, signed, expiring, good under /ui only."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from serving.ui.auth import COOKIE, LOGIN_PATH, SESSION_S, UiSessions, is_ui_path

NOW = 1_800_000_000.0


def _headers(cookie: str) -> Headers:
    return Headers({"cookie": f"{COOKIE}={cookie}"})


def test_a_cookie_is_issued_for_a_key_only_and_holds_no_key() -> None:
    sessions = UiSessions(["key-one", "key-two"])
    assert sessions.issue("wrong", NOW) is None
    assert sessions.issue("", NOW) is None
    cookie = sessions.issue("key-two", NOW)
    assert cookie is not None
    assert "key-two" not in cookie
    assert cookie.startswith(f"{int(NOW) + SESSION_S}.")


def test_a_cookie_is_valid_until_it_expires() -> None:
    sessions = UiSessions(["key"])
    cookie = sessions.issue("key", NOW)
    assert cookie is not None
    assert sessions.valid(cookie, NOW + SESSION_S - 1)
    assert not sessions.valid(cookie, NOW + SESSION_S)


def test_a_changed_expiry_or_signature_is_refused() -> None:
    sessions = UiSessions(["key"])
    cookie = sessions.issue("key", NOW)
    assert cookie is not None
    expiry, signature = cookie.split(".")
    assert not sessions.valid(f"{int(expiry) + 3600}.{signature}", NOW)
    assert not sessions.valid(f"{expiry}.{signature[:-1]}0", NOW)
    assert not sessions.valid(f"{expiry}.", NOW)


@pytest.mark.parametrize(
    "cookie",
    ["", ".", "abc", "1.2.3", "９９９９.ab", "１2.x", "1" * 40 + ".ab", "\udfff.x", "12.ü"],
)
def test_garbage_is_refused_without_raising(cookie: str) -> None:
    assert not UiSessions(["key"]).valid(cookie, NOW)


def test_a_cookie_dies_with_its_key() -> None:
    cookie = UiSessions(["old", "new"]).issue("old", NOW)
    assert cookie is not None
    assert UiSessions(["old", "new"]).valid(cookie, NOW)
    assert not UiSessions(["new"]).valid(cookie, NOW)


def test_the_cookie_is_honoured_under_ui_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: NOW)
    sessions = UiSessions(["key"])
    cookie = sessions.issue("key")
    assert cookie is not None
    for path in ("/ui", "/ui/", "/ui/config", "/ui/gradio_api/queue/join"):
        assert sessions.admits(path, _headers(cookie)), path
    for path in ("/", "/uix", "/v1/classify", "/metrics", "/docs", "/u/ui"):
        assert not sessions.admits(path, _headers(cookie)), path
    assert not sessions.admits("/ui/", Headers({}))


def test_paths_of_the_ui() -> None:
    assert is_ui_path("/ui")
    assert is_ui_path("/ui/login")
    assert not is_ui_path("/uix")
    assert not is_ui_path("/v1/ui")


def test_a_browser_asking_for_the_page_is_sent_to_the_login() -> None:
    sessions = UiSessions(["key"])
    page = {"type": "http", "method": "GET", "root_path": ""}
    for path in ("/ui", "/ui/"):
        response = sessions.login_redirect(page, path)
        assert response is not None
        assert response.status_code == 303
        assert response.headers["location"] == LOGIN_PATH
    behind_proxy = sessions.login_redirect({**page, "root_path": "/nlu"}, "/ui/")
    assert behind_proxy is not None
    assert behind_proxy.headers["location"] == "/nlu" + LOGIN_PATH
    assert sessions.login_redirect(page, "/ui/config") is None
    assert sessions.login_redirect({**page, "method": "POST"}, "/ui/") is None


def test_without_keys_no_login_is_required() -> None:
    assert not UiSessions([]).required
    assert UiSessions(["key"]).required
    assert UiSessions([]).issue("anything", NOW) is None
