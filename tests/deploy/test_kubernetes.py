"""deploy/k8s: every manifest is valid (offline: Kubernetes' own schemas with
kubernetes-validate, custom resources against their vendored CRDs), the CPU overlay renders as
kustomize renders it, and what the manifests say about the server is what the server does: the
command parses with the real CLI parser, the port is the one it listens on, the probes ask a
route vLLM serves without the key, and the grace period covers the drain
(SEQGPT_DRAIN_TIMEOUT_S) and the stop after it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from serving.http.surface import ALWAYS_OPEN, SERVED_VLLM_PATHS
from serving.process.launcher import settings_errors
from serving.process.server import parse_vllm_args
from serving.process.supervisor import GRACE_S
from tests.deploy.kustomize import load_documents, render
from tests.deploy.schemas import validate

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE, CPU = K8S / "base", K8S / "overlays" / "cpu"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# vLLM's own stop once the drain is over (uvicorn, engine core, workers); seen up to ~5 s here.
VLLM_STOP_S = 10
# The oldest Kubernetes still commonly run, and the newest schemas the validator has.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {obj["kind"]: obj for obj in objects}
    assert len(found) == len(objects), "one object per kind expected"
    return found


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def expand(word: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of ``$(VAR)`` in command and args (``$$`` escapes a dollar)."""
    out, i = "", 0
    while i < len(word):
        if word.startswith("$$", i):
            out, i = out + "$", i + 2
        elif word.startswith("$(", i) and ")" in word[i:]:
            end = word.index(")", i)
            name = word[i + 2 : end]
            out, i = out + env.get(name, word[i : end + 1]), end + 1
        else:
            out, i = out + word[i], i + 1
    return out


def server_args(objects: list[dict[str, Any]]) -> list[str]:
    """The container's seqgpt-serve serve arguments, expanded from its ConfigMap."""
    main = container(objects)
    assert main["command"] == ["seqgpt-serve", "serve"]
    env = dict(by_kind(objects)["ConfigMap"]["data"])
    return [expand(arg, env) for arg in main["args"]]


RENDERED = {"base": render(BASE), "cpu": render(CPU)}


# Kustomizations are kustomize's files and patches are checked in the rendered overlay.
MANIFESTS = sorted(
    path.relative_to(K8S)
    for path in K8S.rglob("*.yaml")
    if path.name != "kustomization.yaml" and not path.name.endswith(".patch.yaml")
)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=str)
def test_every_manifest_file_is_valid(path: Path, version: str) -> None:
    for doc in load_documents(K8S / path):
        validate(doc, version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_every_rendered_object_is_valid(variant: str, version: str) -> None:
    assert len(MANIFESTS) == 6  # the base's five files and the Secret example
    assert sorted(by_kind(RENDERED[variant])) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    for obj in RENDERED[variant]:
        validate(obj, version)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not here")
@pytest.mark.parametrize("folder", [BASE, CPU], ids=["base", "cpu"])
def test_kustomize_renders_what_the_test_renders(folder: Path) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    )

    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    theirs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert sorted(theirs, key=key) == sorted(render(folder), key=key)


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_command_parses_and_listens_on_the_container_port(variant: str) -> None:
    objects = RENDERED[variant]
    args = parse_vllm_args(server_args(objects))
    assert args.model == by_kind(objects)["ConfigMap"]["data"]["SEQGPT_MODEL"]
    (port,) = container(objects)["ports"]
    assert port == {"name": "http", "containerPort": args.port}
    service = by_kind(objects)["Service"]["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]


@pytest.mark.parametrize("variant", sorted(RENDERED))
@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_ask_an_open_vllm_route_on_the_servers_port(variant: str, probe: str) -> None:
    from vllm.entrypoints.serve.instrumentator.health import router

    get = container(RENDERED[variant])[probe]["httpGet"]
    assert get["port"] == "http"  # the named container port, checked above
    assert get["path"] in ALWAYS_OPEN  # no key needed
    assert get["path"] in SERVED_VLLM_PATHS
    assert get["path"] in {route.path for route in router.routes}  # vLLM's own route


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_grace_period_covers_prestop_drain_and_the_stop(variant: str) -> None:
    objects = RENDERED[variant]
    pod = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]
    main = container(objects)
    sleep, seconds = main["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    drain = float(by_kind(objects)["ConfigMap"]["data"]["SEQGPT_DRAIN_TIMEOUT_S"])
    engine_drain = parse_vllm_args(server_args(objects)).shutdown_timeout  # 0: vLLM aborts
    needed = int(seconds) + drain + engine_drain + VLLM_STOP_S + GRACE_S
    assert pod["terminationGracePeriodSeconds"] >= needed
    # A draining server answers /health with 503: liveness must not kill it meanwhile.
    liveness = main["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_selectors_and_targets_meet(variant: str) -> None:
    kinds = by_kind(RENDERED[variant])
    deployment = kinds["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert kinds["Service"]["spec"]["selector"] == labels
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2  # the PDB lets one go
    assert kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_settings_come_from_the_configmap_and_are_accepted(variant: str) -> None:
    objects = RENDERED[variant]
    settings = by_kind(objects)["ConfigMap"]
    main = container(objects)
    assert main["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}]
    assert all(name.startswith(("SEQGPT_", "VLLM_CPU_")) for name in settings["data"])
    assert settings_errors(settings["data"]) == []


def test_the_key_comes_from_a_secret_whose_example_is_not_applied() -> None:
    (env,) = container(RENDERED["base"])["env"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert env["name"] == "VLLM_API_KEY"
    (example,) = load_documents(SECRET_EXAMPLE)
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == ref["name"]
    assert list(example["stringData"]) == [ref["key"]]
    assert all(obj["kind"] != "Secret" for obj in RENDERED["base"] + RENDERED["cpu"])


def test_the_base_asks_for_one_gpu_and_the_cpu_overlay_for_none() -> None:
    base = container(RENDERED["base"])
    assert base["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert base["image"].endswith("-cuda")
    cpu_objects = RENDERED["cpu"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(cpu_objects)
    assert container(cpu_objects)["image"].endswith("-cpu")
    assert int(by_kind(cpu_objects)["ConfigMap"]["data"]["VLLM_CPU_KVCACHE_SPACE"]) > 0
