"""What the launcher hands to the server: its argv, its environment (plugins, keys) and the
settings check, with the server itself replaced by a recorder."""

from __future__ import annotations

import importlib.metadata
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from serving.cli.app import main
from serving.process import launcher
from serving.process.launcher import api_keys, plugins_to_load, server_env, settings_errors

_REAL_ENTRY_POINTS = importlib.metadata.entry_points
_FAKE_PLUGINS = {
    "vllm.general_plugins": ["other_general"],
    "vllm.stat_logger_plugins": ["other_stats"],
    "vllm.endpoint_plugins": ["seqgpt", "other_routes"],
}


def _fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
    names = _FAKE_PLUGINS.get(group, [])
    return [importlib.metadata.EntryPoint(name, f"{name}:make", group) for name in names]


@pytest.fixture
def other_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed vLLM plugins besides ours: two that load by default, one endpoint plugin."""
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points)


@pytest.mark.usefixtures("other_plugins")
@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Unset: vLLM would load every installed plugin, so name them all; endpoint plugins load
        # only when named, so other endpoint plugins stay off.
        (None, "other_general,other_stats,seqgpt"),
        ("", "seqgpt"),  # set but empty: the user allowed no plugin
        ("other_general", "other_general,seqgpt"),
        ("seqgpt,x", "seqgpt,x"),
    ],
)
def test_enabling_our_plugin_keeps_the_others(before: str | None, after: str) -> None:
    assert plugins_to_load(before) == after
    env = server_env({} if before is None else {"VLLM_PLUGINS": before}, [])
    assert env["VLLM_PLUGINS"] == after


def test_plugin_groups_are_vllms() -> None:
    """The groups VLLM_PLUGINS filters, read from vLLM: all of them except the endpoint group."""
    import vllm.plugins

    groups = {value for name, value in vars(vllm.plugins).items() if name.endswith("_GROUP")}
    assert set(launcher.PLUGIN_GROUPS) == groups - {vllm.plugins.ENDPOINT_PLUGINS_GROUP}


def test_server_env_keeps_user_cpu_settings() -> None:
    env = server_env({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}, [])
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "1"


@pytest.mark.parametrize(
    ("flags", "environ", "keys"),
    [
        ([], {}, []),
        ([], {"VLLM_API_KEY": ""}, []),
        ([], {"VLLM_API_KEY": "env"}, ["env"]),
        (["a", "b", "a"], {"VLLM_API_KEY": "env"}, ["a", "b"]),  # flags win; duplicates go
    ],
)
def test_api_keys(flags: list[str], environ: dict[str, str], keys: list[str]) -> None:
    assert api_keys(flags, environ) == keys


def test_keys_reach_the_server_through_its_environment() -> None:
    env = server_env({"SEQGPT_API_KEYS": '["stale"]'}, ["first", "second"])
    assert env["VLLM_API_KEY"] == "first"
    assert json.loads(env["SEQGPT_API_KEYS"]) == ["first", "second"]


def test_no_key_means_no_key_variable() -> None:
    env = server_env({"VLLM_API_KEY": "", "SEQGPT_API_KEYS": '["stale"]'}, [])
    assert "VLLM_API_KEY" not in env
    assert "SEQGPT_API_KEYS" not in env


class Recorder:
    """Stands in for the supervised server: records what it would have been started with."""

    def __init__(self) -> None:
        self.argv: list[str] = []
        self.env: dict[str, str] = {}
        self.calls = 0

    def __call__(self, argv: list[str], env: dict[str, str], **_: Any) -> int:
        self.argv, self.env, self.calls = argv, env, self.calls + 1
        return 0


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr("serving.process.supervisor.supervise", recorder)
    monkeypatch.setattr(
        "setproctitle.setproctitle", lambda title: setattr(recorder, "title", title)
    )
    for name in ("VLLM_API_KEY", "SEQGPT_API_KEYS", "SEQGPT_MAX_LABELS", "SEQGPT_UI_SESSION_DIR"):
        monkeypatch.delenv(name, raising=False)
    return recorder


def test_serve_passes_vllm_flags_through_and_keys_never(server: Recorder) -> None:
    argv = ["serve", "./my-model", "--api-key", "k1", "--port=9", "--api-key=k2", "-tp", "1"]
    assert main(argv) == 0
    assert server.argv[:3] == [sys.executable, "-m", "serving.entry"]
    assert server.argv[3:] == ["./my-model", "--port=9", "-tp", "1"]
    assert (server.env["VLLM_API_KEY"], server.env["SEQGPT_API_KEYS"]) == ("k1", '["k1", "k2"]')
    assert "k1" not in getattr(server, "title", "k1")
    assert "k2" not in getattr(server, "title", "k2")


def test_serve_takes_the_key_from_vllm_api_key(
    server: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "from-env")
    assert main(["serve"]) == 0
    assert "from-env" not in " ".join(server.argv)
    assert json.loads(server.env["SEQGPT_API_KEYS"]) == ["from-env"]


def test_bad_settings_stop_the_launch_with_one_line_each(
    server: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEQGPT_MAX_LABELS", "abc")
    monkeypatch.setenv("SEQGPT_CHUNK_SIZE", "0")
    assert main(["serve"]) == 2
    assert server.calls == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    labels = next(line for line in lines if line.startswith("error: SEQGPT_MAX_LABELS='abc'"))
    assert "valid integer" in labels
    chunk = next(line for line in lines if line.startswith("error: SEQGPT_CHUNK_SIZE='0'"))
    assert "greater than or equal to 1" in chunk


def test_settings_are_checked_as_the_server_will_see_them() -> None:
    assert settings_errors({"SEQGPT_MAX_TEXT_CHARS": "100"}) == []
    (line,) = settings_errors({"SEQGPT_CONSTRAIN_CLASSIFICATION": "maybe"})
    assert line.startswith("error: SEQGPT_CONSTRAIN_CLASSIFICATION='maybe': input should be")
    assert "(default: True)" in line


def test_the_server_gets_a_private_folder_for_the_ui_sessions_for_its_life(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its API processes inherit the variable and share the folder; it goes with the server."""
    seen: dict[str, Any] = {}

    def server(argv: list[str], env: dict[str, str], **_: Any) -> int:
        folder = Path(env["SEQGPT_UI_SESSION_DIR"])
        seen.update(folder=folder, mode=stat.S_IMODE(folder.stat().st_mode))
        return 0

    monkeypatch.setattr("serving.process.supervisor.supervise", server)
    monkeypatch.delenv("SEQGPT_UI_SESSION_DIR", raising=False)
    assert main(["serve"]) == 0
    assert seen["mode"] == 0o700
    assert not seen["folder"].exists()


def test_a_ui_session_folder_the_operator_names_is_used_and_kept(
    server: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    kept.mkdir(mode=0o700)
    monkeypatch.setenv("SEQGPT_UI_SESSION_DIR", str(kept))
    assert main(["serve"]) == 0
    assert server.env["SEQGPT_UI_SESSION_DIR"] == str(kept)
    assert kept.is_dir()


def test_an_endless_timeout_stops_the_launch_in_one_line(
    server: Recorder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEQGPT_BODY_LINGER_S", "inf")
    assert main(["serve"]) == 2
    assert server.calls == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: SEQGPT_BODY_LINGER_S='inf': input should be a finite number")
