"""deploy/k8s for SeqGPT-7B1: the one-GPU overlay (``overlays/7b1``, also checked with every other
variant in ``test_kubernetes.py`` and ``test_k8s_security.py``) and its memory arithmetic, and the
multi-node overlay on paper (``overlays/7b1-multinode``: LeaderWorkerSet, validated against the
LWS CRD vendored in ``tests/deploy/crds``), both read as rendered."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from serving.process.server import parse_vllm_args
from serving.testmodels.random_model import SIZES
from tests.deploy.k8s import K8S, RENDERED, container, named, one, pod_spec, server_args
from tests.deploy.kustomize import render
from tests.deploy.schemas import validate
from tests.deploy.test_k8s_security import is_dns, restricted_violations
from tests.deploy.test_kubernetes import VERSIONS

SEQGPT_7B1 = "DAMO-NLP/SeqGPT-7B1"
# BLOOMZ-7B1's shape (its config.json): the test checkpoint `make-test-model --size 7b1` has it.
PARAMS = 7.1e9
HIDDEN, LAYERS = 4096, 30
BYTES = 2  # bf16/fp16 weights and KV cache
GPU_BYTES = 24e9  # L4, A10G, RTX 4090/3090
OVERHEAD_BYTES = 1.5e9  # activations, CUDA graphs, the CUDA context: vLLM's profile, about
CLASSIFY_TOKENS = 150  # a classification prompt with its answer
MULTINODE = K8S / "overlays" / "7b1-multinode"
LWS = render(MULTINODE)
LWS_KIND = ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
GPU = "nvidia.com/gpu"


def kv_cache_tokens(utilization: float) -> float:
    """Tokens of KV cache left on a 24 GB GPU once vLLM has taken its share and the weights."""
    per_token = 2 * LAYERS * HIDDEN * BYTES  # K and V, every layer
    return (utilization * GPU_BYTES - PARAMS * BYTES - OVERHEAD_BYTES) / per_token


def test_the_test_model_has_the_shape_the_arithmetic_uses() -> None:
    shape = SIZES["7b1"]
    assert (shape.hidden_size, shape.full_layers, shape.vocab_size) == (HIDDEN, LAYERS, 250_880)
    assert shape.hidden_size // shape.n_head == 128


def test_the_7b1_overlay_serves_seqgpt_7b1_on_one_24_gb_gpu() -> None:
    objects = RENDERED["7b1"]
    args = parse_vllm_args(server_args(objects))
    assert args.model == SEQGPT_7B1 == one(objects, "ConfigMap")["data"]["SEQGPT_MODEL"]
    assert container(objects)["resources"]["limits"][GPU] == 1
    tokens = kv_cache_tokens(args.gpu_memory_utilization)
    # At least four full contexts at once, and the figures the kustomization's comment states.
    assert tokens >= 4 * args.max_model_len
    comment = (K8S / "overlays" / "7b1" / "kustomization.yaml").read_text(encoding="utf-8")
    assert f"~{round(tokens, -3):,.0f} tokens" in comment
    contexts = int(tokens // args.max_model_len)
    assert f"{contexts} full --max-model-len {args.max_model_len} contexts" in comment
    assert f"~{round(tokens / CLASSIFY_TOKENS, -1):.0f} classification prompts" in comment


def _gibibytes(quantity: str) -> float:
    assert quantity.endswith("Gi"), quantity
    return float(quantity.removesuffix("Gi")) * 2**30


def test_the_7b1_overlay_has_room_for_its_weights_on_disk_and_in_host_memory() -> None:
    objects = RENDERED["7b1"]
    cache = one(objects, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"]
    assert _gibibytes(cache) >= 2 * PARAMS * 4  # fp32 files and one more revision
    memory = container(objects)["resources"]["requests"]["memory"]
    assert _gibibytes(memory) >= 2 * PARAMS * BYTES


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_of_the_multinode_overlay_is_valid(version: str) -> None:
    kinds = sorted(obj["kind"] for obj in LWS)
    assert "Deployment" not in kinds
    assert kinds.count("LeaderWorkerSet") == 1
    for obj in LWS:
        validate(obj, version)  # the LeaderWorkerSet against the vendored LWS CRD


def _lws() -> dict[str, Any]:
    (found,) = [obj for obj in LWS if (obj["apiVersion"], obj["kind"]) == LWS_KIND]
    return found


def _template(role: str) -> dict[str, Any]:
    return _lws()["spec"]["leaderWorkerTemplate"][f"{role}Template"]  # type: ignore[no-any-return]


def _gpus(role: str) -> int:
    (item,) = _template(role)["spec"]["containers"]
    return int(item["resources"]["limits"][GPU])


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_multinode_pods_meet_the_restricted_pod_security_standard(role: str) -> None:
    assert restricted_violations(_template(role)["spec"]) == []


def _serve_args() -> list[str]:
    """The leader's ``seqgpt-serve serve`` arguments, its shell's variables expanded."""
    (leader,) = _template("leader")["spec"]["containers"]
    (script,) = leader["args"]
    (line,) = [line for line in script.splitlines() if "seqgpt-serve serve" in line]
    words = shlex.split(line.strip())
    assert words[:3] == ["exec", "seqgpt-serve", "serve"]
    settings = named(LWS, "ConfigMap", "seqgpt-settings")["data"]
    return [re.sub(r"\$(\w+)", lambda m: settings[m.group(1)], word) for word in words[3:]]


def test_the_leader_serves_7b1_over_the_whole_group() -> None:
    args = parse_vllm_args(_serve_args())
    assert args.model == SEQGPT_7B1
    spec = _lws()["spec"]["leaderWorkerTemplate"]
    group_gpus = _gpus("leader") + (spec["size"] - 1) * _gpus("worker")
    assert args.pipeline_parallel_size * args.tensor_parallel_size == group_gpus
    assert args.tensor_parallel_size == _gpus("leader")  # tensor parallel within a node only
    assert args.distributed_executor_backend == "ray"
    assert spec["restartPolicy"] == "RecreateGroupOnPodRestart"
    # The leader is ready only once its workers joined: they must not wait for it.
    assert _lws()["spec"]["startupPolicy"] == "LeaderCreated"


def test_the_leader_is_the_one_pod_deployment_of_the_7b1_overlay() -> None:
    """Probes, grace, security, volumes and the weights' wait are the Deployment's: no drift."""
    deployment = pod_spec(RENDERED["7b1"])
    leader = _template("leader")["spec"]
    for field in ("terminationGracePeriodSeconds", "securityContext", "volumes", "tolerations"):
        assert leader[field] == deployment[field], field
    assert leader["initContainers"] == deployment["initContainers"]
    (ours,) = leader["containers"]
    theirs = container(RENDERED["7b1"])
    for field in ("startupProbe", "readinessProbe", "livenessProbe", "lifecycle", "ports"):
        assert ours[field] == theirs[field], field
    for field in ("env", "envFrom", "resources", "securityContext", "volumeMounts", "image"):
        assert ours[field] == theirs[field], field
    worker = _template("worker")["spec"]
    assert worker["volumes"] == deployment["volumes"]


def test_service_scrape_budget_and_scaler_aim_at_leaders_only() -> None:
    leader = _template("leader")["metadata"]["labels"]
    worker = _template("worker")["metadata"]["labels"]
    for selector in (
        one(LWS, "Service")["spec"]["selector"],
        one(LWS, "PodMonitor")["spec"]["selector"]["matchLabels"],
        one(LWS, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        named(LWS, "NetworkPolicy", "seqgpt")["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= leader.items()
        assert not selector.items() <= worker.items()
    target = one(LWS, "ScaledObject")["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == LWS_KIND
    assert target["name"] == _lws()["metadata"]["name"]


def test_the_group_reaches_itself_for_ray() -> None:
    # LeaderWorkerSet labels every pod of a set with its name.
    group = {"leaderworkerset.sigs.k8s.io/name": _lws()["metadata"]["name"]}
    ray = named(LWS, "NetworkPolicy", "seqgpt-ray")["spec"]
    assert ray["podSelector"]["matchLabels"] == group
    assert ray["ingress"] == [{"from": [{"podSelector": {"matchLabels": group}}]}]
    group_rule, dns = ray["egress"]
    assert group_rule == {"to": [{"podSelector": {"matchLabels": group}}]}
    # The workers are selected by this policy alone and join the leader by its DNS name.
    assert is_dns(dns)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) not here")
def test_kustomize_renders_the_multinode_overlay_as_the_test_does() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(MULTINODE)], capture_output=True, text=True, check=True
    )

    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    theirs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert sorted(theirs, key=key) == sorted(LWS, key=key)
