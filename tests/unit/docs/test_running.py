"""The "Running the server" commands (docs/running.md) run as written in a fresh shell: each
calls the venv's script, the quick ones are run, and every ``serve`` line is checked by vLLM's
parser."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from serving.process.modelcheck import model_problem
from serving.process.server import parse_vllm_args, served_model
from tests.docs import section

SECTION = section("docs/running.md", "# Running the server")
(BLOCK,) = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)
COMMANDS = [line.split("  #")[0].strip() for line in BLOCK.splitlines() if line.strip()]
SERVE = [
    command for command in COMMANDS if "seqgpt-serve serve" in command and "--help" not in command
]


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder whose ``.venv`` is the running one; the quick commands run there, in order."""
    folder = tmp_path_factory.mktemp("fresh")
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])
    for command in COMMANDS:
        if command not in SERVE:
            subprocess.run(["bash", "-c", command], cwd=folder, check=True, capture_output=True)
    return folder


def test_every_command_uses_the_venvs_script() -> None:
    assert len(COMMANDS) >= 6
    for command in COMMANDS:
        if "seqgpt-serve" in command:
            assert not re.search(r"(^|[\s|&;])seqgpt-serve", command), command


def test_the_quick_commands_made_the_test_model_and_the_config(shell: Path) -> None:
    assert (shell / ".models" / "tiny" / "config.json").exists()
    assert (shell / "serve.yaml").exists()


@pytest.mark.parametrize("command", SERVE)
def test_serve_commands_parse_and_find_their_model(
    command: str, shell: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = shlex.split(command)
    while "=" in words[0]:  # VAR=value prefixes
        words.pop(0)
    assert words[:2] == [".venv/bin/seqgpt-serve", "serve"]
    monkeypatch.chdir(shell)
    model = served_model(parse_vllm_args(words[2:]))
    if model.startswith("."):  # the hub model needs the network: not checked here
        assert model_problem(model) is None
