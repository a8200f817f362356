"""The batch commands' shared options: written once (``serving.cli.options``), no private name
of one CLI module imported by another, the same options in every batch command."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer

from serving.cli.app import app

CLI = Path(__file__).parents[3] / "serving" / "cli"
RUN_OPTIONS = {
    "--model",
    "--url",
    "--api-key",
    "--api-key-file",
    "--concurrency",
    "--max-row-bytes",
    "--dtype",
    "--max-model-len",
    "--max-num-seqs",
    "--enforce-eager",
}


@pytest.mark.parametrize("module", sorted(CLI.glob("*.py")), ids=lambda path: path.name)
def test_no_cli_module_imports_a_private_name_of_another(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("serving")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


@pytest.mark.parametrize("command", ["classify", "extract", "eval"])
def test_every_batch_command_takes_every_run_option(command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    options = {name for param in click_command.params for name in param.opts}
    assert options >= RUN_OPTIONS
