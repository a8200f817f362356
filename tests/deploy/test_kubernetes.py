"""deploy/k8s: every manifest is valid (offline: Kubernetes' own schemas with
kubernetes-validate, the custom resources against their vendored CRDs), every overlay renders as
kustomize renders it, and what the manifests say about the server is what the server does: the
command parses with the real CLI parser, the port is the one it listens on, the probes ask a
route vLLM serves without the key, the grace period covers the load balancer's deregistration,
the drain (SEQGPT_DRAIN_TIMEOUT_S) and the stop after it, a rollout waits longer than a pod may
take to start, and replicas spread over nodes and zones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml

from serving.http.surface import ALWAYS_OPEN, SERVED_VLLM_PATHS
from serving.process.launcher import settings_errors
from serving.process.server import parse_vllm_args
from serving.process.supervisor import GRACE_S
from tests.deploy.k8s import (
    K8S,
    RENDERED,
    VARIANTS,
    container,
    named,
    one,
    pod_spec,
    server_args,
)
from tests.deploy.kustomize import load_documents, render
from tests.deploy.schemas import validate

SECRET_EXAMPLE = K8S / "secret.example.yaml"
# vLLM's own stop once the drain is over (uvicorn, engine core, workers); seen up to ~5 s here.
VLLM_STOP_S = 10
# How long after a pod is deleted its address may still get new connections: the Service's
# endpoints, kube-proxy and ingress controllers follow within seconds, cloud load balancers with
# pod targets (AWS NLB/ALB in IP mode, GKE NEGs) take up to about 30 s.
LB_DEREGISTRATION_S = 30
# Scheduling and pulling the image (the CUDA image is ~10 GB) before the startupProbe counts.
IMAGE_PULL_S = 300
# The oldest Kubernetes still commonly run, and the newest schemas the validator has.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
SERVER_LABELS = {"app.kubernetes.io/name": "seqgpt-serve"}
BASE_KINDS = [
    "ConfigMap",
    "Deployment",
    "Job",
    "NetworkPolicy",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "PodMonitor",
    "PrometheusRule",
    "ScaledObject",
    "Service",
]
# Kustomizations and patches are kustomize's files (patches are checked in the rendered
# overlays); *.values.yaml are another program's (Helm values).
MANIFESTS = sorted(
    path.relative_to(K8S)
    for path in K8S.rglob("*.yaml")
    if path.name != "kustomization.yaml" and not path.name.endswith((".patch.yaml", ".values.yaml"))
)


def startup_budget(objects: list[dict[str, Any]]) -> int:
    """The longest a server may take to start before the kubelet restarts it."""
    probe = container(objects)["startupProbe"]
    return probe["periodSeconds"] * probe["failureThreshold"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=str)
def test_every_manifest_file_is_valid(path: Path, version: str) -> None:
    for doc in load_documents(K8S / path):
        validate(doc, version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_every_rendered_object_is_valid(variant: str, version: str) -> None:
    # The base's ten files, the HPA overlay's, the multi-node overlay's two, the Secret example.
    assert len(MANIFESTS) == 14
    kinds = sorted(obj["kind"] for obj in RENDERED[variant])
    if variant == "hpa":
        kinds[kinds.index("HorizontalPodAutoscaler")] = "ScaledObject"
    assert sorted(kinds) == BASE_KINDS
    for obj in RENDERED[variant]:
        validate(obj, version)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not here")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kustomize_renders_what_the_test_renders(variant: str) -> None:
    folder = VARIANTS[variant]
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
    settings = one(objects, "ConfigMap")["data"]
    assert (args.model, args.revision) == (settings["SEQGPT_MODEL"], settings["SEQGPT_REVISION"])
    (port,) = container(objects)["ports"]
    assert port == {"name": "http", "containerPort": args.port}
    service = one(objects, "Service")["spec"]
    assert [p["targetPort"] for p in service["ports"]] == ["http"]


@pytest.mark.parametrize("variant", sorted(RENDERED))
@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_ask_an_open_vllm_route_on_the_servers_port(variant: str, probe: str) -> None:
    from vllm.entrypoints.serve.instrumentator.health import router

    get = container(RENDERED[variant])[probe]["httpGet"]
    assert get["port"] == "http"  # the named container port, checked above
    assert ("GET", get["path"]) in ALWAYS_OPEN  # no key needed
    assert get["path"] in SERVED_VLLM_PATHS
    assert get["path"] in {route.path for route in router.routes}  # vLLM's own route


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_grace_period_covers_deregistration_drain_and_the_stop(variant: str) -> None:
    objects = RENDERED[variant]
    main = container(objects)
    sleep, seconds = main["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    # Until the load balancers have let the pod go, it keeps serving as before.
    assert int(seconds) >= LB_DEREGISTRATION_S
    drain = float(one(objects, "ConfigMap")["data"]["SEQGPT_DRAIN_TIMEOUT_S"])
    engine_drain = parse_vllm_args(server_args(objects)).shutdown_timeout  # 0: vLLM aborts
    needed = int(seconds) + drain + engine_drain + VLLM_STOP_S + GRACE_S
    assert pod_spec(objects)["terminationGracePeriodSeconds"] >= needed
    # A draining server answers /health with 503: liveness must not kill it meanwhile.
    liveness = main["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_a_rollout_waits_longer_than_a_pod_may_take_to_start(variant: str) -> None:
    objects = RENDERED[variant]
    deadline = one(objects, "Deployment")["spec"]["progressDeadlineSeconds"]
    assert deadline >= startup_budget(objects) + IMAGE_PULL_S
    assert deadline > 600  # Kubernetes' default, shorter than the start-up budget


def test_the_base_replaces_pods_in_place_and_the_surge_overlay_starts_new_ones_first() -> None:
    def strategy(variant: str) -> dict[str, Any]:
        return one(RENDERED[variant], "Deployment")["spec"]["strategy"]  # type: ignore[no-any-return]

    # One GPU per pod and none spare: stop one, then start its successor.
    assert strategy("base")["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    # A spare GPU: the successor starts first, so capacity never drops.
    assert strategy("surge")["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    difference = jsonpatch.make_patch(RENDERED["base"], RENDERED["surge"]).patch
    assert {op["path"].split("/", 2)[2] for op in difference} == {
        "spec/strategy/rollingUpdate/maxSurge",
        "spec/strategy/rollingUpdate/maxUnavailable",
    }


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_replicas_spread_over_nodes_and_zones(variant: str) -> None:
    spec = pod_spec(RENDERED[variant])
    labels = one(RENDERED[variant], "Deployment")["spec"]["template"]["metadata"]["labels"]
    constraints = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in constraints.values():
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"] == {"matchLabels": labels}
        # Counted per revision: during a rollout the old pods do not skew the new ones.
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_selectors_and_targets_meet(variant: str) -> None:
    objects = RENDERED[variant]
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == SERVER_LABELS
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert one(objects, "Service")["spec"]["selector"] == labels
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == labels
    assert one(objects, "PodMonitor")["spec"]["selector"]["matchLabels"] == labels
    assert named(objects, "NetworkPolicy", "seqgpt")["spec"]["podSelector"]["matchLabels"] == labels
    # The Job's pods are none of the server's: no traffic, budget or scrape reaches them.
    job_labels = one(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not labels.items() <= job_labels.items()
    kind = "HorizontalPodAutoscaler" if variant == "hpa" else "ScaledObject"
    scaler = one(objects, kind)["spec"]
    target = scaler["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert scaler.get("minReplicas", scaler.get("minReplicaCount")) >= 2  # the PDB lets one go
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_settings_come_from_the_configmap_and_are_accepted(variant: str) -> None:
    objects = RENDERED[variant]
    settings = one(objects, "ConfigMap")
    main = container(objects)
    assert main["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}]
    assert all(name.startswith(("SEQGPT_", "VLLM_CPU_")) for name in settings["data"])
    assert settings_errors(settings["data"]) == []


def test_the_keys_come_from_secrets_whose_examples_are_not_applied() -> None:
    env = {var["name"]: var for var in container(RENDERED["base"])["env"]}
    examples = {doc["metadata"]["name"]: doc for doc in load_documents(SECRET_EXAMPLE)}
    for name in ("VLLM_API_KEY", "SEQGPT_METRICS_KEY"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        example = examples.pop(ref["name"])
        assert example["kind"] == "Secret"
        assert list(example["stringData"]) == [ref["key"]]
    assert not examples
    assert all(obj["kind"] != "Secret" for objects in RENDERED.values() for obj in objects)


def images(objects: list[dict[str, Any]]) -> set[str]:
    """Every image the objects run (init containers and the Job's included)."""
    return {
        item["image"]
        for kind in ("Deployment", "Job")
        for item in pod_spec(objects, kind).get("initContainers", [])
        + pod_spec(objects, kind)["containers"]
    }


def test_the_base_asks_for_one_gpu_and_the_cpu_overlay_for_none() -> None:
    base = container(RENDERED["base"])
    assert base["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert images(RENDERED["base"]) == {base["image"]}  # one image to build and pull
    assert base["image"].endswith("-cuda")
    cpu_objects = RENDERED["cpu"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(cpu_objects)
    (cpu_image,) = images(cpu_objects)
    assert cpu_image.endswith("-cpu")
    assert int(one(cpu_objects, "ConfigMap")["data"]["VLLM_CPU_KVCACHE_SPACE"]) > 0
