"""``seqgpt-serve serve --user NAME``: as root the launcher becomes NAME for good (in a child
process here: the switch cannot be undone), as anyone else nothing changes; a user that does not
exist, or root, stops the launch with one line."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serving.cli.app import main
from serving.process.privileges import PrivilegeError, run_as
from tests.unit.process.test_launcher import Recorder

UNPRIVILEGED = "nobody"  # in every Debian and most other systems' passwd
MISSING = "seqgpt-no-such-user"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr("serving.process.supervisor.supervise", recorder)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    return recorder


def _never(*_: object) -> None:
    raise AssertionError("switched users")


def test_not_root_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "setuid", _never)
    environ = {"HOME": "/home/alice", "USER": "alice"}
    assert run_as(MISSING, environ) == environ  # even a user that does not exist


def test_not_root_the_launcher_starts_the_server_as_itself(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "setuid", _never)
    monkeypatch.setenv("HOME", "/home/alice")
    assert main(["serve", "--user", MISSING, "--port", "9"]) == 0
    assert server.calls == 1
    assert server.argv[3:] == ["--port", "9"]  # --user is the launcher's, not vLLM's
    assert server.env["HOME"] == "/home/alice"


@pytest.mark.parametrize(
    ("user", "says"),
    [(MISSING, f"useradd --system --create-home {MISSING}"), ("root", "that is root"), ("0", "")],
)
def test_as_root_a_missing_user_or_root_stops_the_launch(
    user: str,
    says: str,
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "setuid", _never)
    with pytest.raises(PrivilegeError):
        run_as(user, {})
    assert main(["serve", "--user", user]) == 2
    assert server.calls == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --user {user}: ")
    assert says in line


def _as_root_in_a_child(program: str) -> dict[str, object]:
    """Run ``program`` (which prints JSON) in a child Python, as root; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@root_only
def test_as_root_the_launcher_becomes_the_user_for_good() -> None:
    record = pwd.getpwnam(UNPRIVILEGED)
    seen = _as_root_in_a_child(
        f"""
        import json, os
        from serving.process import privileges
        # Whether the user can read this Python depends on the machine: the next test's.
        privileges._python_paths = lambda: []
        env = privileges.run_as({UNPRIVILEGED!r}, {{"HOME": "/root", "USER": "root", "KEEP": "1"}})
        try:
            os.setuid(0)
            back = True
        except PermissionError:
            back = False
        print(json.dumps({{"ids": [os.getresuid(), os.getresgid()], "groups": os.getgroups(),
                          "env": env, "back": back}}))
        """
    )
    uid, gid = record.pw_uid, record.pw_gid
    assert seen["ids"] == [[uid, uid, uid], [gid, gid, gid]]  # real, effective and saved
    assert 0 not in seen["groups"]  # root's supplementary groups are gone
    assert seen["env"] == {
        "HOME": record.pw_dir,
        "USER": UNPRIVILEGED,
        "LOGNAME": UNPRIVILEGED,
        "KEEP": "1",
    }
    assert not seen["back"]


@root_only
def test_as_root_a_python_the_user_cannot_read_stops_the_launch(tmp_path: Path) -> None:
    hidden = tmp_path / "root-only" / "python"
    hidden.mkdir(parents=True)
    hidden.parent.chmod(0o700)
    seen = _as_root_in_a_child(
        f"""
        import json
        from serving.process import privileges
        privileges._python_paths = lambda: ["/bin", {str(hidden)!r}]
        try:
            privileges.run_as({UNPRIVILEGED!r}, {{}})
            print(json.dumps({{"error": None}}))
        except privileges.PrivilegeError as exc:
            print(json.dumps({{"error": str(exc)}}))
        """
    )
    assert seen["error"] == (
        f"--user {UNPRIVILEGED}: this user cannot read {hidden} (the server's Python); let it "
        "read that and search every folder above it"
    )
