"""Files this command wrote, known by what they begin with; the ones it rewrites, written whole.

A batch's OUTPUT (``serving.batch.files``) and the report files of ``seqgpt-serve eval``
(``serving.batch.report``) may already exist: a run resumed, a report written again. Each is
known as this command's by the bytes it begins with (``begins_with``: a result line's start, a
report's title, a mark in the plot's PNG header); anything else there is someone else's file,
refused untouched (``check_ours``), and so is a symbolic link, which is never followed.

The report files are written whole (``replace_file``): into a new file in the same folder,
renamed over the old one, so a link planted in their place between the check and the write is
replaced, never followed, and a reader never sees half a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["BatchFileError", "begins_with", "check_ours", "replace_file"]


class BatchFileError(Exception):
    """INPUT or OUTPUT cannot be used at all (one line for people, not one row's problem)."""


def begins_with(path: Path, head: bytes, at: int = 0, torn: bool = False) -> bool:
    """Whether ``path`` holds ``head`` at byte ``at`` (``torn``: or the start of it, up to the
    file's end): how this command knows a file it wrote."""
    with path.open("rb") as handle:
        handle.seek(at)
        found = handle.read(len(head))
    return head.startswith(found) if torn else found == head


def check_ours(path: Path, head: bytes, at: int = 0) -> None:
    """Nothing at ``path``, or a file this command wrote (``head`` at byte ``at``); else a
    ``BatchFileError``: a link (never followed), a folder, someone else's file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BatchFileError(f"cannot write {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(mode):
        raise BatchFileError(
            f"{path} is a symbolic link; this command writes it itself, never through a link: "
            "remove it or pass another --output"
        )
    try:
        ours = stat.S_ISREG(mode) and begins_with(path, head, at)
    except OSError as exc:
        raise BatchFileError(f"cannot read {path}: {exc.strerror}") from exc
    if not ours:
        raise BatchFileError(
            f"{path} is not a file this command wrote; remove it or pass another --output"
        )


def replace_file(path: Path, data: bytes, head: bytes, at: int = 0) -> None:
    """Write ``data`` as ``path`` whole: into a new file beside it, renamed over it, once
    ``check_ours`` found nothing there or a file of ours (a link is replaced, never followed)."""
    check_ours(path, head, at)
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as new:
            try:
                new.write(data)
                new.flush()
                mask = os.umask(0)  # the mode a file opened plainly gets (tempfile's is 0600)
                os.umask(mask)
                os.chmod(new.name, 0o666 & ~mask)
                os.fsync(new.fileno())
                os.replace(new.name, path)
            except BaseException:
                os.unlink(new.name)
                raise
    except OSError as exc:
        raise BatchFileError(f"cannot write {path}: {exc.strerror}") from exc
