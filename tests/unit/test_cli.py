"""The launcher's argv and environment, its model check, and make-test-model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app, server_command, server_env

runner = CliRunner()


def _flag_values(argv: list[str], flag: str) -> list[list[str]]:
    found, current = [], None
    for arg in argv:
        if arg.startswith("--"):
            current = [] if arg == flag else None
            if current is not None:
                found.append(current)
        elif current is not None:
            current.append(arg)
    return found


def test_server_command_has_seqgpt_defaults() -> None:
    argv = server_command("DAMO-NLP/SeqGPT-560M", "0.0.0.0", 8000, None, [])
    assert argv[1:3] == ["-m", "vllm.entrypoints.launchers.api_server.entry"]
    assert _flag_values(argv, "--served-model-name") == [["seqgpt", "DAMO-NLP/SeqGPT-560M"]]
    assert _flag_values(argv, "--max-model-len") == [["2048"]]
    assert _flag_values(argv, "--generation-config") == [["vllm"]]
    assert _flag_values(argv, "--override-generation-config") == [['{"temperature": 0.0}']]
    assert "--api-key" not in argv


def test_user_flags_replace_defaults_instead_of_repeating_them() -> None:
    extra = ["--max-model-len=1024", "--served-model-name", "mine", "--enforce-eager"]
    argv = server_command("m", "127.0.0.1", 9, "k", extra)
    assert _flag_values(argv, "--max-model-len") == []
    assert "--max-model-len=1024" in argv
    assert _flag_values(argv, "--served-model-name") == [["mine"]]
    assert _flag_values(argv, "--api-key") == [["k"]]
    assert argv[-len(extra) :] == extra


@pytest.mark.parametrize(
    ("before", "after"), [(None, "seqgpt"), ("other", "other,seqgpt"), ("seqgpt,x", "seqgpt,x")]
)
def test_server_env_enables_the_plugin(before: str | None, after: str) -> None:
    env = server_env({} if before is None else {"VLLM_PLUGINS": before})
    assert env["VLLM_PLUGINS"] == after


def test_server_env_keeps_user_cpu_settings() -> None:
    env = server_env({"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "1"})
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "1"


def test_serve_with_a_missing_model_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["serve", "--model", "nobody/no-such-model"])
    assert result.exit_code == 2
    assert "cannot find or download the model 'nobody/no-such-model'" in result.output
    assert "make-test-model" in result.output


def test_make_test_model_writes_a_labelled_loadable_checkpoint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["make-test-model", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["seqgpt_serve_random_weights"] is True
    assert (config["hidden_size"] // config["n_head"], config["dtype"]) == (64, "bfloat16")
    assert (tmp_path / "m" / "tokenizer.json").exists()


def test_make_test_model_rejects_an_unknown_size(tmp_path: Path) -> None:
    result = runner.invoke(app, ["make-test-model", str(tmp_path), "--size", "huge"])
    assert result.exit_code == 2
