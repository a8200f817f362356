"""deploy/Dockerfile (CUDA) and deploy/Dockerfile.cpu without a Docker engine: hadolint passes,
the pins are the project's, and the container's command line, as the image's own shell runs it,
is one the CLI accepts, listening on the exposed port that the health check asks."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from serving.http.surface import ALWAYS_OPEN
from serving.process.launcher import settings_errors
from serving.process.server import parse_vllm_args

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"cuda": ROOT / "deploy" / "Dockerfile", "cpu": ROOT / "deploy" / "Dockerfile.cpu"}
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
SOURCES = ["pyproject.toml", "README.md", "serving", "prompts", "parsers"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
            pending = ""
    return found


def only(path: Path, name: str) -> str:
    (value,) = [rest for word, rest in instructions(path) if word == name]
    return value


def image_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions(path):
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))  # type: ignore[misc]
    return env


def container_argv(path: Path, tmp_path: Path, *extra: str, **env: str) -> list[str]:
    """The argv ``seqgpt-serve`` gets when the image starts (``docker run IMAGE *extra``),
    found by running ENTRYPOINT + CMD with the image's ENV through the real /bin/sh, with a
    stand-in seqgpt-serve on PATH that prints its arguments."""
    shim = tmp_path / "seqgpt-serve"
    shim.write_text("#!/bin/sh\nprintf '%s\\0' \"$@\"\n")
    shim.chmod(0o755)
    command = json.loads(only(path, "ENTRYPOINT")) + (list(extra) or json.loads(only(path, "CMD")))
    run_env = {**image_env(path), **env, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    out = subprocess.run(command, env=run_env, capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_hadolint_passes(variant: str) -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILES[variant])], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_the_command_line_parses_and_serves_the_exposed_port(variant: str, tmp_path: Path) -> None:
    path = DOCKERFILES[variant]
    argv = container_argv(path, tmp_path)
    assert argv[0] == "serve"
    args = parse_vllm_args(argv[1:])
    assert args.model == image_env(path)["SEQGPT_MODEL"]
    assert settings_errors(image_env(path)) == []
    assert float(image_env(path)["SEQGPT_DRAIN_TIMEOUT_S"]) > 0  # drain on docker stop
    assert only(path, "EXPOSE") == str(args.port)
    check = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", only(path, "HEALTHCHECK"))
    assert check is not None
    assert int(check[1]) == args.port
    assert ("GET", check[2]) in ALWAYS_OPEN


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_run_arguments_and_the_model_variable_reach_the_cli(variant: str, tmp_path: Path) -> None:
    path = DOCKERFILES[variant]
    argv = container_argv(
        path, tmp_path, "--max-num-seqs", "64", "--enforce-eager", SEQGPT_MODEL="/models/m"
    )
    args = parse_vllm_args(argv[1:])
    assert (args.model, args.max_num_seqs, args.enforce_eager) == ("/models/m", 64, True)


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_the_image_runs_as_a_user_not_root(variant: str) -> None:
    users = [rest for word, rest in instructions(DOCKERFILES[variant]) if word == "USER"]
    assert users
    assert users[-1].isdigit()
    assert users[-1] != "0"


def test_the_cuda_image_is_vllms_at_the_pinned_version_and_keeps_its_vllm() -> None:
    (pin,) = EXTRAS["gpu"]
    version = pin.removeprefix("vllm==")
    path = DOCKERFILES["cuda"]
    assert only(path, "FROM") == f"vllm/vllm-openai:v{version}"
    runs = [rest for word, rest in instructions(path) if word == "RUN"]
    installs = [step for run in runs for step in run.split("&&") if "pip install" in step]
    assert len(installs) == 2  # dependencies, then the package
    assert not any("vllm" in step or "[" in step for step in installs)
    assert any(f"v('vllm') == '{version}'" in run for run in runs)  # the build checks it


def test_the_cpu_image_installs_the_pinned_engine_as_the_makefile_does() -> None:
    (pin,) = EXTRAS["cpu"]
    runs = " ".join(rest for word, rest in instructions(DOCKERFILES["cpu"]) if word == "RUN")
    assert f'"{pin}"' in runs
    assert "https://download.pytorch.org/whl/cpu" in runs
    makefile = (ROOT / "Makefile").read_text()
    removed = re.search(r"uninstall --quiet -y ([\w ]+);", makefile)
    assert removed is not None
    assert f"uninstall -y {removed[1].strip()}" in runs


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_the_build_context_holds_what_the_image_copies(variant: str) -> None:
    kept = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] != "#"]
    assert rules[0] == "*"  # an allowlist: whatever is not named stays out
    copied = [
        rest.split()[:-1] for word, rest in instructions(DOCKERFILES[variant]) if word == "COPY"
    ]
    assert sorted(source.rstrip("/") for sources in copied for source in sources) == sorted(SOURCES)
    assert kept == set(SOURCES)
