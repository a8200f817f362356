"""deploy/k8s's pods under the "restricted" Pod Security Standard, with a read-only root
filesystem and no service-account token, writing only to volumes meant for it; and its
NetworkPolicies: the server takes connections on its port only, from its namespace and from
Prometheus, and sends only DNS; the Job that downloads the weights is the one pod with HTTPS out.

The paths the server writes were measured: the tiny model served from a read-only hub cache, by
a server whose root filesystem was mounted read-only with HOME and /tmp writable (a private mount
namespace), with a classification, an extraction and the UI page asked. Written: HOME
(``~/.cache/vllm``: vLLM's compile cache and model info) and /tmp (torch inductor's cache, ~150 MB;
Gradio's folder, vLLM's sockets, the UI's session folder). On CUDA, triton caches in ``~/.triton``.
"""

from __future__ import annotations

import copy
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.deploy.k8s import K8S, RENDERED, container, named, one, pod_spec, server_env
from tests.deploy.kustomize import render

# The restricted profile (kubernetes.io/docs/concepts/security/pod-security-standards/).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
_SECCOMP = {"RuntimeDefault", "Localhost"}
# Where the server writes (the module docstring): a path, or an environment variable holding one.
SERVER_WRITES = ["HOME", "/tmp"]
POD_KINDS = ["Deployment", "Job"]


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _container_violations(item: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    name, context = item["name"], item.get("securityContext", {})
    found = []
    if context.get("privileged"):
        found.append(f"{name}: privileged")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append(f"{name}: allowPrivilegeEscalation is not false")
    capabilities = context.get("capabilities", {})
    if "ALL" not in capabilities.get("drop", []):
        found.append(f"{name}: capabilities do not drop ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        found.append(f"{name}: adds capabilities")
    if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
        found.append(f"{name}: runAsNonRoot is not true")
    if context.get("runAsUser", pod.get("runAsUser")) == 0:
        found.append(f"{name}: runs as uid 0")
    seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
    if seccomp.get("type") not in _SECCOMP:
        found.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
    if any(port.get("hostPort") for port in item.get("ports", [])):
        found.append(f"{name}: hostPort")
    return found


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in pod ``spec`` the restricted Pod Security Standard refuses (its checks that
    these manifests could meet: no Windows, AppArmor, SELinux or sysctl settings)."""
    pod = spec.get("securityContext", {})
    found = [f"pod: {field}" for field in _HOST_NAMESPACES if spec.get(field)]
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {kinds}")
    for item in _containers(spec):
        found += _container_violations(item, pod)
    return found


def test_the_check_finds_what_the_restricted_profile_refuses() -> None:
    spec = copy.deepcopy(pod_spec(RENDERED["base"]))
    assert restricted_violations(spec) == []
    del spec["securityContext"]["seccompProfile"]
    spec["hostNetwork"] = True
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    spec["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert len(restricted_violations(spec)) == 1 + 1 + 2 + 2 + 1


@pytest.mark.parametrize("kind", POD_KINDS)
@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_pods_meet_the_restricted_pod_security_standard(variant: str, kind: str) -> None:
    assert restricted_violations(pod_spec(RENDERED[variant], kind)) == []


@pytest.mark.parametrize("kind", POD_KINDS)
@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_root_filesystems_are_read_only_and_no_api_token_is_mounted(
    variant: str, kind: str
) -> None:
    spec = pod_spec(RENDERED[variant], kind)
    assert spec["automountServiceAccountToken"] is False
    for item in _containers(spec):
        assert item["securityContext"]["readOnlyRootFilesystem"] is True, item["name"]


def mounted_at(
    item: dict[str, Any], spec: dict[str, Any], path: str
) -> tuple[dict[str, Any], bool]:
    """The volume holding ``path`` in container ``item`` (the deepest mount above it) and
    whether the container may write there."""
    mounts = [m for m in item["volumeMounts"] if PurePosixPath(path).is_relative_to(m["mountPath"])]
    assert mounts, f"{path} is on the read-only root filesystem"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    claim = volume.get("persistentVolumeClaim", {})
    writable = not mount.get("readOnly") and not claim.get("readOnly")
    return volume, writable


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_server_writes_to_pod_scratch_and_reads_the_hub_cache(variant: str) -> None:
    objects = RENDERED[variant]
    spec, main = pod_spec(objects), container(objects)
    env = server_env(objects)
    for place in SERVER_WRITES:
        volume, writable = mounted_at(main, spec, env.get(place, place))
        assert "emptyDir" in volume
        assert writable, place
    volume, writable = mounted_at(main, spec, env["HF_HOME"])
    assert "persistentVolumeClaim" in volume
    assert not writable
    volume, _ = mounted_at(main, spec, "/dev/shm")
    assert volume["emptyDir"]["medium"] == "Memory"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}
    return selector.get("matchLabels", {}).items() <= labels.items()


def _pod_labels(objects: list[dict[str, Any]], kind: str) -> dict[str, str]:
    return one(objects, kind)["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def is_dns(rule: dict[str, Any]) -> bool:
    """Whether an egress rule lets pods reach the cluster's DNS (kube-dns in kube-system) on 53,
    UDP and TCP (TCP for answers too large for a datagram)."""
    ports = {(p["protocol"], p["port"]) for p in rule.get("ports", [])}
    peers = rule.get("to", [])
    if len(peers) != 1:
        return False
    (peer,) = peers
    pods = peer.get("podSelector", {}).get("matchLabels")
    namespaces = peer.get("namespaceSelector", {}).get("matchLabels")
    kube_system = {"kubernetes.io/metadata.name": "kube-system"}
    in_cluster_dns = pods == {"k8s-app": "kube-dns"} and namespaces == kube_system
    return ports == {("UDP", 53), ("TCP", 53)} and in_cluster_dns


# Every kustomization under deploy/k8s, found on disk: an overlay added later is covered too.
EVERY_VARIANT = sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("folder", EVERY_VARIANT, ids=lambda path: path.name)
def test_every_policy_that_limits_egress_lets_its_pods_resolve_names(folder: Path) -> None:
    """A pod under an egress policy without DNS reaches nothing by name: the multinode workers
    join their leader at a DNS name ($LWS_LEADER_ADDRESS), the server reads hosts by name."""
    policies = [obj for obj in render(folder) if obj["kind"] == "NetworkPolicy"]
    assert policies, folder
    for policy in policies:
        spec = policy["spec"]
        if "Egress" in spec.get("policyTypes", []):
            name = policy["metadata"]["name"]
            assert any(is_dns(rule) for rule in spec.get("egress", [])), f"{folder}: {name}"


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_the_server_takes_its_port_from_clients_and_prometheus_and_sends_only_dns(
    variant: str,
) -> None:
    objects = RENDERED[variant]
    policy = named(objects, "NetworkPolicy", "seqgpt")["spec"]
    assert _selects(policy["podSelector"], _pod_labels(objects, "Deployment"))
    assert not _selects(policy["podSelector"], _pod_labels(objects, "Job"))
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "http"}]  # the server's port
    assert [p["name"] for p in container(objects)["ports"]] == ["http"]
    this_namespace, monitoring = ingress["from"]
    assert this_namespace == {"podSelector": {}}
    assert monitoring["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    (dns,) = policy["egress"]
    assert is_dns(dns)
    assert server_env(objects)["HF_HUB_OFFLINE"] == "1"  # nothing to fetch: the cache is filled


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_only_the_weights_job_reaches_out_and_nothing_reaches_it(variant: str) -> None:
    objects = RENDERED[variant]
    policy = named(objects, "NetworkPolicy", "seqgpt-weights")["spec"]
    assert _selects(policy["podSelector"], _pod_labels(objects, "Job"))
    assert not _selects(policy["podSelector"], _pod_labels(objects, "Deployment"))
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy.get("ingress", []) == []
    dns, https = policy["egress"]
    assert is_dns(dns)
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    (peer,) = https["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert set(peer["ipBlock"]["except"]) == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
