"""deploy/supervisord.conf read as supervisor reads it, its program's command run as supervisor
runs it (a stand-in for the launcher records what it gets): only SEQGPT_LOG_DIR must be set, every
other variable has a default, values reach the launcher word for word, the launcher is the process
supervisor signals, only the launcher's "stopped on request" counts as an expected exit, and the
stop waits out the drain."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from serving.core.settings import Settings
from serving.process.server import parse_vllm_args
from serving.process.supervisor import GRACE_S

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "supervisord.conf"
REQUIRED = {"SEQGPT_LOG_DIR"}
OPTIONAL = ("SEQGPT_MODEL", "SEQGPT_PORT", "SEQGPT_SERVE_ARGS", "SEQGPT_USER")
# SEQGPT_DRAIN_TIMEOUT_S's default, from the settings once the serving side's drain is there.
_DRAIN_FIELD = Settings.model_fields.get("drain_timeout_s")
DRAIN_S = float(_DRAIN_FIELD.default) if _DRAIN_FIELD is not None else 30.0
VLLM_STOP_S = 10  # vLLM's own stop after the drain: uvicorn, engine core, workers
# Stands in for .venv/bin/seqgpt-serve: prints its arguments and its pid.
_STAND_IN = "import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'pid': os.getpid()}))\n"


@pytest.fixture
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The seqgpt560m program as supervisord builds it from the file, with only the required
    variable set."""
    for name in OPTIONAL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEQGPT_LOG_DIR", str(tmp_path))
    options = ServerOptions()
    options.configfile = str(CONF)
    options.process_config(do_usage=False)
    (group,) = options.process_group_configs
    (config,) = group.process_configs
    return config


def run_command(program: Any, root: Path, env: dict[str, str]) -> tuple[list[str], bool]:
    """Run the program's command as supervisor does (split with shlex, run from its directory:
    here ``root``, laid out as the repository with a stand-in launcher) with ``env``; return the
    launcher's arguments, and whether it is the very process started (the shell exec'ed it)."""
    launcher = root / ".venv" / "bin" / "seqgpt-serve"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(f"#!{sys.executable}\n{_STAND_IN}")
    launcher.chmod(0o755)
    (root / "README.md").touch()  # what an unquoted * would expand to
    process = subprocess.Popen(
        shlex.split(program.command), cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    seen = json.loads(out)
    return seen["argv"], seen["pid"] == process.pid


def test_only_the_log_folder_is_read_by_supervisor_itself() -> None:
    """Supervisor's %(ENV_X)s has no default: the file names no other variable that way."""
    settings = [line for line in CONF.read_text().splitlines() if not line.startswith(";")]
    assert set(re.findall(r"%\(ENV_(\w+)\)s", "\n".join(settings))) == REQUIRED


@pytest.mark.parametrize("unset", ["missing", "empty"])
def test_every_other_variable_has_a_default(program: Any, tmp_path: Path, unset: str) -> None:
    assert program.directory == f"{CONF.parent}/.."  # relative paths: from the repository root
    env = {"PATH": "/usr/bin:/bin"}
    if unset == "empty":
        env.update(dict.fromkeys(OPTIONAL, ""))
    argv, exec_ed = run_command(program, tmp_path, env)
    assert exec_ed  # supervisor's SIGTERM reaches the launcher, not a shell
    assert argv[:3] == ["serve", "--user", "seqgpt"]
    args = parse_vllm_args(argv[3:])
    assert (args.model, args.port) == ("DAMO-NLP/SeqGPT-560M", 8000)
    assert argv[3:] == ["--model", "DAMO-NLP/SeqGPT-560M", "--port", "8000"]  # no extra flag


def test_values_reach_the_launcher_word_for_word(program: Any, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SEQGPT_MODEL": "/srv/my models/SeqGPT 560M",
        "SEQGPT_PORT": "8123",
        "SEQGPT_SERVE_ARGS": " --enforce-eager  --max-num-seqs 64 --served-model-name * ",
        "SEQGPT_USER": "svc-seqgpt",
    }
    argv, exec_ed = run_command(program, tmp_path, env)
    assert exec_ed
    assert argv[:3] == ["serve", "--user", "svc-seqgpt"]
    args = parse_vllm_args(argv[3:])
    assert (args.model, args.port, args.enforce_eager, args.max_num_seqs) == (
        env["SEQGPT_MODEL"],
        8123,
        True,
        64,
    )
    assert argv[-2:] == ["--served-model-name", "*"]  # split at blanks, never globbed


def test_the_launcher_not_supervisor_switches_users(program: Any) -> None:
    """supervisor's ``user=`` needs the user to exist wherever the file is read and fails under
    any other ordinary user; the launcher's --user applies only when it is root."""
    assert program.uid is None


def test_restarts_on_any_exit_but_a_requested_stop_and_gives_up_on_failed_starts(
    program: Any,
) -> None:
    from supervisor.datatypes import RestartUnconditionally, RestartWhenExitUnexpected

    assert program.autorestart is RestartWhenExitUnexpected
    assert program.autorestart is not RestartUnconditionally
    assert program.exitcodes == [0]  # the launcher's status after a requested stop
    assert program.startretries == 3  # then FATAL: a usage error (exit 2) comes within startsecs


def test_the_stop_waits_out_the_drain_and_the_launchers_cleanup(program: Any) -> None:
    assert program.stopsignal == signal.SIGTERM  # the launcher drains on it
    assert program.stopwaitsecs >= DRAIN_S + VLLM_STOP_S + GRACE_S
    assert program.killasgroup
    assert program.startsecs >= 30  # a model load takes that


def test_logs_rotate_in_the_log_folder(program: Any, tmp_path: Path) -> None:
    assert Path(program.stdout_logfile).parent == tmp_path
    assert program.redirect_stderr
    assert program.stdout_logfile_maxbytes > 0
    assert program.stdout_logfile_backups > 0
