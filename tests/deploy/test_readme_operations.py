"""The "Operations" commands (docs/operations.md) fit what they name: make targets exist, files
exist, the status command's options parse, `docker run` arguments reach the CLI's parser through
the image's entrypoint, image tags and object names match the manifests. (The supervisor
commands themselves run in test_supervisor_restart; Docker and kubectl need an engine and a
cluster.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from serving.cli.app import main
from serving.process.server import parse_vllm_args
from tests.deploy.kustomize import render
from tests.deploy.test_containers import DOCKERFILES, container_argv
from tests.docs import read, section

ROOT = Path(__file__).resolve().parents[2]
PAGE = "docs/operations.md"
SECTION = section(PAGE, "# Operations")
LINES = [
    line.split("  #")[0].strip()
    # sh: blocks with curl (tests/e2e/test_readme.py runs the bash ones holding curl)
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", SECTION, flags=re.S)
    for line in block.splitlines()
    if line.strip()
]
K8S = {"base": ROOT / "deploy/k8s/base", "cpu": ROOT / "deploy/k8s/overlays/cpu"}
# docker run options that take a value (the rest used here are flags).
_DOCKER_VALUES = {"-p", "-v", "-e", "--shm-size", "--gpus", "--name"}


def commands(start: str) -> list[list[str]]:
    return [shlex.split(line) for line in LINES if line.startswith(start)]


def test_the_page_is_the_readmes_operations_link() -> None:
    assert f"[Operations]({PAGE})" in read("README.md")
    assert read(PAGE).split("\n", 1)[1] == SECTION  # the whole page, after its title
    assert len(LINES) >= 20


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = {word for words in commands("make ") for word in words[1:2]}
    assert targets >= {"supervise", "supervise-status", "supervise-restart", "supervise-stop"}
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), target


def test_named_files_exist() -> None:
    paths = set(re.findall(r"\(\.\./(deploy/[^)\s]+)\)", SECTION))  # links from docs/
    paths |= {word for line in LINES for word in shlex.split(line) if word.startswith("deploy/")}
    assert len(paths) >= 7
    for path in paths:
        assert (ROOT / path).exists(), path


@pytest.mark.parametrize("words", commands(".venv/bin/seqgpt-serve status"), ids=" ".join)
def test_status_commands_parse(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*words[1:], "--help"]) == 0  # unknown options would be a usage error (2)
    assert "Exit status" in capsys.readouterr().out


def _docker_run(words: list[str]) -> tuple[str, dict[str, str], list[str]]:
    """The image, the -e variables with a value, and the arguments after the image."""
    env: dict[str, str] = {}
    i = 2
    while words[i].startswith("-"):
        if words[i] == "-e" and "=" in words[i + 1]:
            name, value = words[i + 1].split("=", 1)
            env[name] = value
        i += 2 if words[i] in _DOCKER_VALUES else 1
    return words[i], env, words[i + 1 :]


@pytest.mark.parametrize("words", commands("docker run"), ids=lambda w: w[-1])
def test_docker_run_arguments_reach_the_cli(words: list[str], tmp_path: Path) -> None:
    image, env, args = _docker_run(words)
    built = {w[w.index("-t") + 1]: w[w.index("-f") + 1] for w in commands("docker build")}
    dockerfile = ROOT / built[image]
    assert dockerfile in DOCKERFILES.values()
    argv = container_argv(dockerfile, tmp_path, *args, **env)
    assert argv[0] == "serve"
    parsed = parse_vllm_args(argv[1:])
    assert parsed.model == env.get("SEQGPT_MODEL", "DAMO-NLP/SeqGPT-560M")


def test_images_built_are_the_ones_the_manifests_run() -> None:
    built = {w[w.index("-f") + 1]: w[w.index("-t") + 1] for w in commands("docker build")}
    for variant, dockerfile in [("base", "deploy/Dockerfile"), ("cpu", "deploy/Dockerfile.cpu")]:
        deployment = next(obj for obj in render(K8S[variant]) if obj["kind"] == "Deployment")
        (main_container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert main_container["image"] == built[dockerfile]


def test_kubectl_commands_name_the_manifests_objects() -> None:
    objects = {(obj["kind"], obj["metadata"]["name"]) for obj in render(K8S["base"])}
    text = " ".join(LINES)
    for kind, name, written in [
        ("Deployment", "seqgpt", "deployment/seqgpt"),
        ("Job", "seqgpt-weights", "job/seqgpt-weights"),
        ("ScaledObject", "seqgpt", "scaledobject,hpa seqgpt"),
        ("ScaledObject", "seqgpt", "patch scaledobject seqgpt"),
        ("Service", "seqgpt", "service/seqgpt"),
    ]:
        assert (kind, name) in objects
        assert written in text
    applied = {w[3] for w in commands("kubectl apply -k")}
    assert applied == {"deploy/k8s/base"}
    assert "kubectl apply -k deploy/k8s/overlays/cpu" in SECTION
    overlays = {path.name for path in (ROOT / "deploy/k8s/overlays").iterdir()}
    linked = set(re.findall(r"\(\.\./deploy/k8s/overlays/([\w-]+)\)", SECTION))
    assert linked == overlays  # each overlay is told
    secrets = commands("kubectl create secret generic")
    deployment = next(obj for obj in render(K8S["base"]) if obj["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = [var["valueFrom"]["secretKeyRef"] for var in env if "valueFrom" in var]
    # One command per Secret the server reads: the API key and Prometheus's metrics-only key.
    assert len(secrets) == len(refs) == 2
    for secret, ref in zip(secrets, refs, strict=True):
        assert secret[4] == ref["name"]
        assert secret[5].startswith(f"--from-literal={ref['key']}=")
