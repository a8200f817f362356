"""The web UI's ended sessions, one list shared by every API server process of a server.

A UI cookie (``serving.ui.auth``) is signed and carries its expiry, so any process that knows the
keys can check it without state. Ending a session before its expiry (``/ui/logout``) needs state,
and vLLM can run several API server processes behind one port (``--api-server-count``), each with
its own copy of the plugin: a logout answered by one must be honoured by all. So each cookie
names a random session id, and the ids of ended sessions are kept here with their cookies' expiry.

- **Where.** One small file, ``revoked.json``, in a private folder every process finds through its
  environment (``SEQGPT_UI_SESSION_DIR``): the launcher makes a fresh one (``0700``, in the
  temporary folder) for each server it starts and removes it when the server ends, and vLLM's API
  processes inherit the variable. A folder named by the operator is created ``0700`` if missing
  and refused if another user could write to it. Without a folder (the plugin run by plain vLLM)
  the list is the process's own, which is enough for one API process.
- **Reading is cheap.** A check stats the file and reads it again only when it changed (inode,
  size, mtime): a logout in one process is seen by the next request in every other.
- **Writing is safe.** A writer holds an exclusive ``flock`` on ``lock`` beside the file, reads
  the list, adds its entry and replaces the file atomically (a temporary file, ``os.replace``):
  no reader sees half a list, and two logouts at once both land.
- **Bounded.** An entry leaves when its cookie expires, and at most ``MAX_ENDED`` are kept: past
  that the entries that expire first are dropped and the list's ``floor`` rises to their expiry.
  Every cookie expiring at or before ``floor`` is refused, so dropping an entry logs more
  browsers out, never one back in.
- **A new list ends older sessions.** A list starts with ``floor`` at the expiry of a cookie
  issued a second before it was made, so cookies it cannot know the fate of are refused: a server
  the launcher starts again (a new folder) logs every browser out rather than honour a cookie
  that was logged out before. A folder that outlives the server keeps sessions and logouts both.
  A list found missing or unreadable as JSON is started anew the same way.
- **Failing closed.** While the file cannot be read at all, no cookie is honoured (the API key
  still is); a logout that cannot be written raises, and the session stays valid.
- **No symlinks.** The folder, the list and the lock are checked and opened without following a
  symbolic link (``lstat``, ``O_NOFOLLOW``): a link planted there (to another user's folder or
  file) is refused like a folder others may write to, and the list must be a regular file.
- **The event loop never waits on the lock.** A check runs on the event loop (the gate asks it),
  so when the list must be made anew it only tries the lock: while another process holds it (a
  logout, or that process making the list) the check fails closed for that request instead of
  blocking the loop, and a later one makes the list. Logouts take the lock in a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = ["LIST_FILE", "MAX_ENDED", "Revocations"]

logger = logging.getLogger(__name__)

LIST_FILE = "revoked.json"
_LOCK_FILE = "lock"
MAX_ENDED = 10_000
"""Most ended sessions kept before the oldest give way to a higher floor (~0.5 MB of file)."""


@dataclass(frozen=True)
class _List:
    floor: int
    """Cookies expiring at or before this (seconds since the epoch) are refused."""
    ended: dict[str, int] = field(default_factory=dict)
    """Session id -> its cookie's expiry."""


class Revocations:
    """The sessions ended before their expiry: in ``folder`` (shared), or in this process."""

    def __init__(
        self,
        folder: Path | None,
        lifetime_s: int,
        *,
        cap: int = MAX_ENDED,
        now: float | None = None,
    ) -> None:
        self._folder = folder
        self._lifetime_s = lifetime_s
        self._cap = cap
        self._list = self._fresh(now)
        self._seen: tuple[int, int, int] | None = None  # the file's (inode, size, mtime) read
        self._failing = False
        if folder is not None:
            _ensure_private(folder)
            self._current(now)  # make the list now, so cookies issued from here on are good

    def ended(self, session: str, expiry: int, now: float | None = None) -> bool:
        """Whether the session ``session`` (its cookie expiring at ``expiry``) was ended."""
        current = self._current(now)
        if current is None:  # the shared list cannot be read: honour no cookie
            return True
        return expiry <= current.floor or session in current.ended

    def end(self, session: str, expiry: int, now: float | None = None) -> None:
        """End ``session`` for every process sharing the list (raises ``OSError`` if it cannot
        be recorded: the session then stays valid)."""
        moment = time.time() if now is None else now
        if self._folder is None:
            self._list = self._with(self._list, session, expiry, moment)
            return
        with self._locked():
            found = self._read()
            self._write(self._with(found or self._fresh(moment), session, expiry, moment))

    def _fresh(self, now: float | None) -> _List:
        """An empty list that refuses the cookies issued before it."""
        moment = time.time() if now is None else now
        return _List(floor=int(moment) - 1 + self._lifetime_s)

    def _with(self, current: _List, session: str, expiry: int, now: float) -> _List:
        """``current`` with ``session`` ended, expired entries dropped, within the cap."""
        ended = {s: e for s, e in current.ended.items() if e > max(now, current.floor)}
        if expiry > current.floor:
            ended[session] = expiry
        floor = current.floor
        if len(ended) > self._cap:
            by_expiry = sorted(ended.values())
            floor = by_expiry[len(ended) - self._cap - 1]
            ended = {s: e for s, e in ended.items() if e > floor}
        return _List(floor, ended)

    def _current(self, now: float | None) -> _List | None:
        """The list as it stands (re-read when the file changed); None if it cannot be read."""
        if self._folder is None:
            return self._list
        try:
            try:
                current = self._load()
            except (FileNotFoundError, ValueError):  # missing, or not a list: start anew
                with self._locked(wait=False):  # on the event loop: never wait for the lock
                    if self._read() is None:  # still so under the lock
                        self._write(self._fresh(now))
                current = self._load()
        except BlockingIOError:  # another process holds the lock, for a moment: refuse this one
            return None
        except (OSError, ValueError) as exc:
            if not self._failing:  # once, not at every request
                logger.error("seqgpt: the UI's session list cannot be read: %s", exc)
            self._failing = True
            return None
        self._failing = False
        return current

    def _load(self) -> _List:
        """The file's list, read again only if the file changed since it was last read."""
        assert self._folder is not None
        with _open_list(self._folder / LIST_FILE) as stream:
            info = os.fstat(stream.fileno())
            seen = (info.st_ino, info.st_size, info.st_mtime_ns)
            if seen != self._seen:  # the file just stat'ed, read through the same descriptor
                self._list, self._seen = _parse(stream.read()), seen
        return self._list

    def _read(self) -> _List | None:
        """The file's list (the lock held), None if it is missing or not a list."""
        assert self._folder is not None
        try:
            with _open_list(self._folder / LIST_FILE) as stream:
                return _parse(stream.read())
        except (FileNotFoundError, ValueError):
            return None

    def _write(self, current: _List) -> None:
        assert self._folder is not None
        body = json.dumps({"floor": current.floor, "ended": current.ended}).encode()
        descriptor, temporary = tempfile.mkstemp(dir=self._folder, prefix=".revoked-")
        try:
            with os.fdopen(descriptor, "wb") as out:  # mkstemp: 0600
                out.write(body)
            os.replace(temporary, self._folder / LIST_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def _locked(self, *, wait: bool = True) -> Iterator[None]:
        """The list's lock held; without ``wait``, ``BlockingIOError`` if another holds it."""
        assert self._folder is not None
        _ensure_private(self._folder)  # made again if it was removed under us
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
        descriptor = os.open(self._folder / _LOCK_FILE, flags, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(descriptor)  # releases the lock


def _parse(body: bytes) -> _List:
    """The list a file holds; ``ValueError`` if it holds something else."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("not a session list")
    floor, ended = data.get("floor"), data.get("ended")
    if not isinstance(floor, int) or not isinstance(ended, dict):
        raise ValueError("not a session list")
    if not all(isinstance(s, str) and isinstance(e, int) for s, e in ended.items()):
        raise ValueError("not a session list")
    return _List(floor, ended)


def _open_list(path: Path) -> BinaryIO:
    """The list file opened for reading, never through a symlink (``OSError``) and never a FIFO
    or a device (``ValueError``: not a list, so it is made anew)."""
    stream = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb")
    if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
        stream.close()
        raise ValueError(f"{path} is not a regular file")
    return stream


def _ensure_private(folder: Path) -> None:
    """Make ``folder`` (``0700``) if missing; refuse a symlink, or one that another user could
    write to (checked on the folder itself, not where a link points)."""
    with contextlib.suppress(FileExistsError):  # a dangling link: refused below
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(
            f"SEQGPT_UI_SESSION_DIR={folder}: the UI's session list needs a folder (not a "
            "symbolic link) of this user that no other user can write to (chmod 700 it)"
        )
