"""The audit log holds users' texts: its files are owner-only whatever the umask, rotated ones
too, and a folder made for it is owner-only; an existing folder is left as the operator set it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.http.observe import AuditLog


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_files_and_a_new_folder_are_owner_only(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "made" / "for-it" / "audit.jsonl"
    log = AuditLog(path, max_bytes=400, backups=2)
    for index in range(20):  # past max_bytes: rotated files appear
        log.record({"request_id": str(index), "text": "用户的文本" * 5})
    log.close()
    rotated = sorted(path.parent.glob("audit.jsonl.*"))
    assert rotated, "no rotation happened"
    assert {_mode(file) for file in [path, *rotated]} == {0o600}
    assert _mode(path.parent) == _mode(path.parent.parent) == 0o700
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[-1])["request_id"] == "19"


def test_an_existing_wider_file_is_narrowed_and_an_existing_folder_kept(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "audit.jsonl"
    path.write_text("", encoding="utf-8")
    path.chmod(0o644)
    log = AuditLog(path, max_bytes=10_000, backups=1)
    log.record({"request_id": "a"})
    log.close()
    assert _mode(path) == 0o600
    assert _mode(tmp_path) == 0o755
