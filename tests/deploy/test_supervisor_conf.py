"""deploy/supervisord.conf read as supervisor reads it, without starting anything: the program's
command is one the CLI accepts, only the launcher's "stopped on request" counts as an expected
exit, and the stop waits out the drain."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from serving.core.settings import Settings
from serving.process.server import parse_vllm_args
from serving.process.supervisor import GRACE_S

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "supervisord.conf"
ENV = {
    "SEQGPT_MODEL": "DAMO-NLP/SeqGPT-560M",
    "SEQGPT_PORT": "8123",
    "SEQGPT_SERVE_ARGS": "--enforce-eager --max-num-seqs 64",
}
# SEQGPT_DRAIN_TIMEOUT_S's default, from the settings once the serving side's drain is there.
_DRAIN_FIELD = Settings.model_fields.get("drain_timeout_s")
DRAIN_S = float(_DRAIN_FIELD.default) if _DRAIN_FIELD is not None else 30.0
VLLM_STOP_S = 10  # vLLM's own stop after the drain: uvicorn, engine core, workers


@pytest.fixture
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The seqgpt560m program as supervisord builds it from the file."""
    for name, value in {**ENV, "SEQGPT_LOG_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.configfile = str(CONF)
    options.process_config(do_usage=False)
    (group,) = options.process_group_configs
    (config,) = group.process_configs
    return config


def test_the_command_runs_the_venvs_launcher_with_flags_the_cli_accepts(program: Any) -> None:
    words = shlex.split(program.command)
    assert words[0] == f"{CONF.parent}/../.venv/bin/seqgpt-serve"  # the repository's venv
    assert program.directory == f"{CONF.parent}/.."  # relative model paths: from the root
    assert words[1] == "serve"
    args = parse_vllm_args(words[2:])
    assert (args.model, args.port, args.enforce_eager, args.max_num_seqs) == (
        ENV["SEQGPT_MODEL"],
        int(ENV["SEQGPT_PORT"]),
        True,
        64,
    )


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
