"""The tenants registry: keys to tenants, the file re-read when it changes, a broken or missing
file keeping the last good set (one log line per bad version), and the routes' scopes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from serving.core.tenancy import ANY, EVERY, Registry, permits, scope_of
from serving.core.tenants import TenantsFileError, key_digest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _block(name: str, key: str, scopes: str = '"tasks"', extra: str = "") -> str:
    return f'[tenants.{name}]\nkey_sha256 = "{key_digest(key)}"\nscopes = [{scopes}]\n{extra}\n'


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()  # a new mtime whatever the file system's clock resolution
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_keys_name_their_tenants(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "tenants.toml"
    _write(path, _block("search", "search-key"))
    registry = Registry(["plain"], ["metrics-key-0123456789"], path, clock=clock)
    assert registry.lookup("plain").name == "default"  # type: ignore[union-attr]
    assert registry.lookup("metrics-key-0123456789").scopes == {"metrics"}  # type: ignore[union-attr]
    assert registry.lookup("search-key").name == "search"  # type: ignore[union-attr]
    assert registry.lookup("nope") is None
    assert registry.lookup(None) is None
    assert registry.required


def test_a_changed_file_is_read_after_a_second(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "tenants.toml"
    _write(path, _block("search", "old-key"))
    registry = Registry([], [], path, clock=clock)
    _write(path, _block("search", "new-key"))
    assert registry.lookup("new-key") is None  # looked at no more than once a second
    clock.now += 1.0
    assert registry.lookup("new-key").name == "search"  # type: ignore[union-attr]
    assert registry.lookup("old-key") is None


def test_a_broken_file_keeps_the_last_good_set_and_logs_once(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tenants.toml"
    _write(path, _block("search", "good-key"))
    registry = Registry([], [], path, clock=clock)
    _write(path, "[tenants.search\nbroken")
    with caplog.at_level(logging.ERROR, "serving.core.tenancy"):
        for _ in range(5):
            clock.now += 1.0
            assert registry.lookup("good-key") is not None
    assert len(caplog.records) == 1
    assert "not TOML" in caplog.records[0].getMessage()
    _write(path, _block("search", "good-key", '"tasks"', "requests_per_minute = 0"))  # bad again
    with caplog.at_level(logging.ERROR, "serving.core.tenancy"):
        clock.now += 1.0
        assert registry.lookup("good-key") is not None
    assert len(caplog.records) == 2  # a new bad version: one more line


def test_a_deleted_file_keeps_the_last_good_set(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tenants.toml"
    _write(path, _block("search", "good-key"))
    registry = Registry([], [], path, clock=clock)
    path.unlink()
    with caplog.at_level(logging.ERROR, "serving.core.tenancy"):
        for _ in range(3):
            clock.now += 1.0
            assert registry.lookup("good-key") is not None
    assert len(caplog.records) == 1
    _write(path, _block("other", "other-key"))  # put back: read again
    clock.now += 1.0
    assert registry.lookup("other-key") is not None


def test_a_broken_file_at_start_up_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text("[tenants.a]\nkey_sha256 = 'not-a-digest'\nscopes = ['tasks']\n")
    with pytest.raises(TenantsFileError, match="key_sha256"):
        Registry([], [], path)
    with pytest.raises(TenantsFileError, match="cannot read"):
        Registry([], [], tmp_path / "missing.toml")
    path.write_text(_block("a", "plain"))
    with pytest.raises(TenantsFileError, match="server's own"):
        Registry(["plain"], [], path)


def test_a_file_too_large_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text("#" * (1 << 20) + "\n")
    with pytest.raises(TenantsFileError, match="larger than"):
        Registry([], [], path)


def test_an_empty_file_still_needs_a_key(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text("")
    assert Registry([], [], path).required
    assert not Registry([], []).required
    assert not Registry([], ["metrics-key-0123456789"]).required  # as before: the API is open


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/v1/classify", "tasks"),
        ("POST", "/v1/extract/batch", "tasks"),
        ("GET", "/v1/status", "tasks"),
        ("POST", "/v1/completions", "completions"),
        ("POST", "/v1/chat/completions", "completions"),
        ("GET", "/v1/models", "completions"),
        ("POST", "/invocations", "completions"),
        ("POST", "/tokenize", "completions"),
        ("GET", "/metrics", "metrics"),
        ("POST", "/metrics", EVERY),
        ("GET", "/ui/", "ui"),
        ("POST", "/ui/gradio_api/queue/join", "ui"),
        ("GET", "/version", ANY),
        ("GET", "/openapi.json", ANY),
        ("POST", "/v1/responses", EVERY),  # enabled by SEQGPT_ENABLE_ROUTES: an admin's
        ("GET", "/metrics/../v1/models", EVERY),
    ],
)
def test_each_route_needs_its_scope(method: str, path: str, scope: str) -> None:
    assert scope_of(method, path) == scope


def test_every_scope_is_needed_for_an_unnamed_route(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(_block("all", "k", '"tasks", "completions", "metrics", "ui"'))
    path.write_text(path.read_text() + _block("some", "k2", '"tasks", "completions"'))
    registry = Registry([], [], path)
    every, some = registry.lookup("k"), registry.lookup("k2")
    assert every is not None
    assert some is not None
    assert permits(every, EVERY)
    assert not permits(some, EVERY)
    assert permits(some, ANY)
    assert permits(some, "tasks")
    assert not permits(some, "metrics")
