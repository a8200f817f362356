"""The user a root supervisord's server runs as, made ready as docs/operations.md tells an
operator to: the system user ``seqgpt`` (deploy/supervisord.conf's default SEQGPT_USER, created if
missing and then kept), allowed to search the folders above the server's Python that it cannot
(pyenv's Pythons live in /root, mode 0700): a POSIX ACL entry for that user alone, what
``setfacl -m u:seqgpt:x FOLDER`` does, undone afterwards."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import struct
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["SERVER_USER", "ensure_user", "let_search"]

SERVER_USER = "seqgpt"
_ACL = "system.posix_acl_access"
# Linux's xattr form of a POSIX ACL: a version, then (tag, permissions, id) per entry, by tag.
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_NO_ID = 0xFFFFFFFF
_SEARCH = 1


def ensure_user(name: str = SERVER_USER) -> pwd.struct_passwd:
    """The system user ``name``, with a home of its own (its caches go there)."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    command = ["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", name]
    made = subprocess.run(command, capture_output=True, text=True, check=False)
    try:  # another test session may have made it meanwhile
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"could not create the user {name}: {made.stderr}") from None


def _can_search(folder: Path, user: pwd.struct_passwd) -> bool:
    info = folder.stat()
    if info.st_uid == user.pw_uid:
        bits = info.st_mode >> 6
    elif info.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
        bits = info.st_mode >> 3
    else:
        bits = info.st_mode
    return bool(bits & _SEARCH)


def _allow_search(folder: Path, uid: int) -> Callable[[], None]:
    """Give user ``uid`` search permission on ``folder`` (its mode's other bits kept); return
    the undo."""
    if _ACL in os.listxattr(folder):
        raise RuntimeError(f"{folder} has an ACL already; give the server's user search on it")
    mode = stat.S_IMODE(folder.stat().st_mode)
    group = mode >> 3 & 7
    entries = [
        (_USER_OBJ, mode >> 6 & 7, _NO_ID),
        (_USER, _SEARCH, uid),
        (_GROUP_OBJ, group, _NO_ID),
        (_MASK, group | _SEARCH, _NO_ID),  # the group bits of the mode become the mask
        (_OTHER, mode & 7, _NO_ID),
    ]
    acl = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(folder, _ACL, acl)

    def undo() -> None:
        os.removexattr(folder, _ACL)
        os.chmod(folder, mode)

    return undo


@contextlib.contextmanager
def let_search(paths: Iterable[Path], user: pwd.struct_passwd) -> Iterator[None]:
    """While inside: ``user`` may search each folder of ``paths`` and every folder above them."""
    folders = {folder for path in paths for folder in [path, *path.parents] if folder.is_dir()}
    undo: list[Callable[[], None]] = []
    try:
        for folder in sorted(folders):
            if not _can_search(folder, user):
                undo.append(_allow_search(folder, user.pw_uid))
        yield
    finally:
        for step in reversed(undo):
            step()
