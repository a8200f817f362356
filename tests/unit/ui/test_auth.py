"""The web UI's session cookie: issued for a key only, signed, expiring, ended by a logout for
every process that shares the list of ended sessions, good under /ui only."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_a_changed_expiry_session_or_signature_is_refused() -> None:
    sessions = UiSessions(["key"])
    cookie = sessions.issue("key", NOW)
    assert cookie is not None
    expiry, session, signature = cookie.split(".")
    assert sessions.valid(f"{expiry}.{session}.{signature}", NOW)
    assert not sessions.valid(f"{int(expiry) + 3600}.{session}.{signature}", NOW)
    assert not sessions.valid(f"{expiry}.{'0' * 32}.{signature}", NOW)
    flipped = "1" if signature.endswith("0") else "0"  # a changed last digit, whatever it was
    assert not sessions.valid(f"{expiry}.{session}.{signature[:-1]}{flipped}", NOW)
    assert not sessions.valid(f"{expiry}.{session}.", NOW)
    assert not sessions.valid(f"{expiry}.{signature}", NOW)  # the old form, without a session


def test_every_login_is_a_session_of_its_own() -> None:
    sessions = UiSessions(["key"])
    cookies = {sessions.issue("key", NOW) for _ in range(50)}
    assert len(cookies) == 50
    assert len({str(cookie).split(".")[1] for cookie in cookies}) == 50


def test_a_logout_ends_that_session_only() -> None:
    sessions = UiSessions(["key"])
    ended, other = sessions.issue("key", NOW), sessions.issue("key", NOW)
    assert ended is not None
    assert other is not None
    assert sessions.end(ended, NOW)
    assert not sessions.valid(ended, NOW)
    assert sessions.valid(other, NOW)
    assert not sessions.end(ended, NOW)  # once is enough


@pytest.mark.parametrize("cookie", ["", "garbage", f"{int(NOW) + 60}.{'a' * 32}.00"])
def test_only_a_valid_cookie_can_be_ended(tmp_path: Path, cookie: str) -> None:
    """Forged or expired cookies never reach the shared list (it only grows by logouts)."""
    sessions = UiSessions(["key"], folder=tmp_path)
    expired = sessions.issue("key", NOW - SESSION_S - 1)
    for value in (cookie, str(expired)):
        assert not sessions.end(value, NOW)
    assert not sessions.valid(str(expired), NOW)
    assert json.loads((tmp_path / "revoked.json").read_bytes())["ended"] == {}


def test_a_logout_in_one_api_process_holds_in_the_others(tmp_path: Path) -> None:
    """Each API process has its own UiSessions; they share the folder (the launcher's)."""
    first, second = UiSessions(["key"], folder=tmp_path), UiSessions(["key"], folder=tmp_path)
    cookie = first.issue("key")
    assert cookie is not None
    assert second.valid(cookie)
    assert second.end(cookie)
    assert not first.valid(cookie)
    assert not second.valid(cookie)
    assert first.valid(str(first.issue("key")))  # a new login works at once


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        ".",
        "..",
        "abc",
        "1.2.3",
        "９９９９.ab",
        "１2.x",
        "1" * 40 + ".ab",
        "\udfff.x",
        "12.ü",
        f"{int(NOW) + 60}.{'A' * 32}.ab",
        f"{int(NOW) + 60}.{'a' * 31}.ab",
        f"{int(NOW) + 60}." + "\udfff" * 32 + ".ab",
        f"{int(NOW) + 60}.{'a' * 32}." + "\udfff",
    ],
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
