"""Who the server runs as: with ``--user NAME``, never root.

``seqgpt-serve serve --user NAME`` started as root becomes NAME for good before it does anything
else: supplementary groups, then group, then user (the order in which root can still change
each), so the launcher, vLLM's API server and its engine all run as NAME, and none can become
root again. HOME, USER and LOGNAME become NAME's: the caches (Hugging Face, vLLM, torch) go to
NAME's home, not to root's. Started by anyone else, ``--user`` changes nothing: only root can
switch users, and a process that is not root already runs unprivileged.

Why the launcher and not supervisor's ``user=``: supervisor resolves ``user=`` when it reads its
file, so the user must exist on every machine, even one where supervisord is not root; and a
supervisord that is neither root nor that user cannot start the program at all. Supervisor
also leaves HOME as root's.
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Mapping

__all__ = ["PrivilegeError", "run_as"]

_READ = os.R_OK | os.X_OK


class PrivilegeError(Exception):
    """The server cannot run as the user asked for; the message says what to do."""


def _record(user: str) -> pwd.struct_passwd:
    """``user``'s passwd entry, by name or by numeric id."""
    try:
        return pwd.getpwnam(user)
    except KeyError:
        if user.isdigit():
            try:
                return pwd.getpwuid(int(user))
            except KeyError:
                pass
    raise PrivilegeError(
        f"--user {user}: no such user on this machine; create it "
        f"(useradd --system --create-home {user}) or name another"
    )


def _python_paths() -> list[str]:
    """The interpreter (links resolved: a venv's python links to the Python it was made from),
    the environment and the standard library."""
    return [os.path.realpath(sys.executable), sys.prefix, sys.base_prefix]


def run_as(user: str, environ: Mapping[str, str]) -> dict[str, str]:
    """As root: become ``user`` for good and return ``environ`` with its HOME, USER and LOGNAME;
    as anyone else: ``environ`` unchanged."""
    env = dict(environ)
    if os.geteuid() != 0:
        return env
    record = _record(user)
    if record.pw_uid == 0:
        raise PrivilegeError(f"--user {user}: that is root; name an unprivileged user")
    os.initgroups(record.pw_name, record.pw_gid)
    os.setgid(record.pw_gid)
    os.setuid(record.pw_uid)
    # The launcher's Python is loaded already; the server's is started anew, as the user.
    unreadable = next((path for path in _python_paths() if not os.access(path, _READ)), None)
    if unreadable is not None:
        raise PrivilegeError(
            f"--user {user}: this user cannot read {unreadable} (the server's Python); let it "
            "read that and search every folder above it"
        )
    env.update(HOME=record.pw_dir, USER=record.pw_name, LOGNAME=record.pw_name)
    return env
