"""The UI's ended sessions: one list that every API process of a server reads, cheap to check,
safe to write from several processes at once, bounded, and failing closed."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from serving.ui import revocations
from serving.ui.revocations import LIST_FILE, Revocations

NOW = 1_800_000_000.0
LIFETIME = 3600
LATER = int(NOW) + LIFETIME  # the expiry of a cookie issued at NOW


def _listed(folder: Path) -> dict[str, int]:
    ended: dict[str, int] = json.loads((folder / LIST_FILE).read_bytes())["ended"]
    return ended


def _end_in_another_process(folder: Path, sessions: list[str]) -> None:
    """Run in a child process: its own interpreter, its own Revocations on the same folder."""
    ended = Revocations(folder, LIFETIME, now=NOW)
    for session in sessions:
        ended.end(session, LATER, now=NOW)


def _spawn(folder: Path, sessions: list[str]) -> multiprocessing.process.BaseProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=_end_in_another_process, args=(folder, sessions)
    )
    process.start()
    return process


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "in-a-folder"])
def test_an_ended_session_is_ended_and_no_other(tmp_path: Path, shared: bool) -> None:
    ended = Revocations(tmp_path / "sessions" if shared else None, LIFETIME, now=NOW)
    assert not ended.ended("a" * 32, LATER, now=NOW)
    ended.end("a" * 32, LATER, now=NOW)
    assert ended.ended("a" * 32, LATER, now=NOW)
    assert not ended.ended("b" * 32, LATER, now=NOW)


def test_a_logout_in_one_process_holds_in_another(tmp_path: Path) -> None:
    """A real second process (spawned like vLLM's API servers) ends a session; this one, which
    had read the list before, sees it at its next check."""
    ended = Revocations(tmp_path, LIFETIME, now=NOW)
    assert not ended.ended("a" * 32, LATER, now=NOW)
    child = _spawn(tmp_path, ["a" * 32])
    child.join(60)
    assert child.exitcode == 0
    assert ended.ended("a" * 32, LATER, now=NOW)
    assert not ended.ended("b" * 32, LATER, now=NOW)


def test_logouts_from_several_processes_at_once_all_land(tmp_path: Path) -> None:
    Revocations(tmp_path, LIFETIME, now=NOW)
    batches = [[f"{worker}{index:031x}" for index in range(40)] for worker in "abc"]
    children = [_spawn(tmp_path, batch) for batch in batches]
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    assert set(_listed(tmp_path)) == {session for batch in batches for session in batch}


def test_the_file_is_read_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = Revocations(tmp_path, LIFETIME, now=NOW), Revocations(tmp_path, LIFETIME)
    reads: list[bytes] = []

    def parse(body: bytes) -> object:
        reads.append(body)
        return original(body)

    original = revocations._parse
    monkeypatch.setattr(revocations, "_parse", parse)
    for _ in range(100):
        assert not reader.ended("a" * 32, LATER, now=NOW)
    assert len(reads) <= 1
    writer.end("a" * 32, LATER, now=NOW)
    reads.clear()
    for _ in range(100):
        assert reader.ended("a" * 32, LATER, now=NOW)
    assert len(reads) == 1


def test_an_entry_leaves_when_its_cookie_expires(tmp_path: Path) -> None:
    ended = Revocations(tmp_path, LIFETIME, now=NOW)
    ended.end("a" * 32, LATER, now=NOW)
    ended.end("b" * 32, LATER + 60, now=LATER + 1)  # a's cookie has expired by now
    assert set(_listed(tmp_path)) == {"b" * 32}


def test_past_the_cap_the_list_logs_more_out_never_one_back_in(tmp_path: Path) -> None:
    ended = Revocations(tmp_path, LIFETIME, cap=3, now=NOW)
    sessions = [f"{index:032x}" for index in range(6)]
    for offset, session in enumerate(sessions):  # issued one second apart
        ended.end(session, LATER + offset, now=NOW + offset)
    assert len(_listed(tmp_path)) <= 3
    for offset, session in enumerate(sessions):
        assert ended.ended(session, LATER + offset, now=NOW + 6), session
    # sessions issued before the dropped ones went too; later ones still live
    assert ended.ended("f" * 32, LATER + 1, now=NOW + 6)
    assert not ended.ended("f" * 32, LATER + 6, now=NOW + 6)


def test_a_new_list_refuses_the_cookies_issued_before_it(tmp_path: Path) -> None:
    """A server started again (a new folder) cannot know which earlier sessions were ended."""
    for folder in (None, tmp_path):
        ended = Revocations(folder, LIFETIME, now=NOW)
        assert ended.ended("a" * 32, LATER - 1, now=NOW)  # issued a second before the list
        assert not ended.ended("a" * 32, LATER, now=NOW)


def test_a_kept_folder_keeps_its_list_for_the_next_server(tmp_path: Path) -> None:
    Revocations(tmp_path, LIFETIME, now=NOW).end("a" * 32, LATER, now=NOW)
    restarted = Revocations(tmp_path, LIFETIME, now=NOW + 600)
    assert restarted.ended("a" * 32, LATER, now=NOW + 600)
    assert not restarted.ended("b" * 32, LATER, now=NOW + 600)  # issued before the restart


@pytest.mark.parametrize("damage", ["missing", "garbage", "not-a-list"])
def test_a_lost_or_damaged_list_starts_anew_and_refuses_older_cookies(
    tmp_path: Path, damage: str
) -> None:
    ended = Revocations(tmp_path, LIFETIME, now=NOW)
    ended.end("a" * 32, LATER + 100, now=NOW)
    path = tmp_path / LIST_FILE
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"\x00{" if damage == "garbage" else b'{"floor": "x", "ended": []}')
    assert ended.ended("b" * 32, LATER + 100, now=NOW + 200)  # issued before the new list
    assert ended.ended("a" * 32, LATER + 100, now=NOW + 200)
    assert not ended.ended("b" * 32, LATER + 200, now=NOW + 200)
    assert _listed(tmp_path) == {}


def test_a_list_that_cannot_be_read_honours_no_cookie_and_a_logout_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ended = Revocations(tmp_path, LIFETIME, now=NOW)
    (tmp_path / LIST_FILE).unlink()
    (tmp_path / LIST_FILE).mkdir()  # reads and replacements both fail
    for _ in range(3):
        assert ended.ended("a" * 32, LATER, now=NOW)
    assert len([r for r in caplog.records if "cannot be read" in r.message]) == 1
    with pytest.raises(IsADirectoryError):
        ended.end("a" * 32, LATER, now=NOW)


def test_a_missing_folder_is_made_private(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        Revocations(tmp_path / "made" / "here", LIFETIME)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "made" / "here").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "made" / "here" / LIST_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_folder_others_can_write_to_is_refused(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(PermissionError, match="SEQGPT_UI_SESSION_DIR"):
        Revocations(folder, LIFETIME)


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    """The privacy check is of the folder named, not of where a link points (a link an attacker
    planted to a private folder of this user would pass a check that follows it)."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PermissionError, match="symbolic link"):
        Revocations(tmp_path / "link", LIFETIME, now=NOW)


@pytest.mark.parametrize("name", [LIST_FILE, "lock"])
def test_a_symlinked_list_or_lock_is_not_followed(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "sessions"
    ended = Revocations(folder, LIFETIME, now=NOW)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"floor": 0, "ended": {}}))
    (folder / name).unlink()
    (folder / name).symlink_to(elsewhere)
    if name == LIST_FILE:  # never read through the link: no cookie honoured meanwhile
        assert ended.ended("a" * 32, LATER, now=NOW)
    with pytest.raises(OSError, match="symbolic link"):  # a logout neither locks nor writes
        ended.end("a" * 32, LATER, now=NOW)
    assert json.loads(elsewhere.read_text()) == {"floor": 0, "ended": {}}


_HOLD_LOCK = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_a_check_never_waits_for_a_lock_another_process_holds(tmp_path: Path) -> None:
    """A check runs on the event loop: when the list must be made anew while another process
    holds the lock, it refuses the cookie at once (fails closed) instead of blocking the loop,
    and the list is made by a later check once the lock is free."""
    ended = Revocations(tmp_path, LIFETIME, now=NOW)
    (tmp_path / LIST_FILE).unlink()  # the list must be made anew, under the lock
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path / "lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"

        async def loop_answers_while_checking() -> list[str]:
            said: list[str] = []

            async def other_request() -> None:
                said.append("answered")

            # The check runs on the loop, as the gate runs it; the other request is served
            # only after the check returns. Blocked, neither would ever happen.
            task = asyncio.get_running_loop().create_task(other_request())
            said.append("refused" if ended.ended("a" * 32, LATER + 1, now=NOW) else "honoured")
            await task
            return said

        outcome: list[list[str]] = []
        thread = threading.Thread(
            target=lambda: outcome.append(asyncio.run(loop_answers_while_checking())), daemon=True
        )
        thread.start()
        thread.join(timeout=60)  # a bound for a hang, not a pace: the check takes microseconds
        assert outcome == [["refused", "answered"]], "the check waited for the lock"
        holder.communicate(timeout=60)  # closes its stdin: the lock is let go
    assert not ended.ended("a" * 32, LATER + 1, now=NOW)  # the lock free: the list made anew
    assert (tmp_path / LIST_FILE).exists()
