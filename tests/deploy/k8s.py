"""deploy/k8s as the tests read it: each variant rendered once (``RENDERED``), and the objects,
pod specs, containers and server arguments in it found by kind and name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.deploy.kustomize import render

__all__ = [
    "K8S",
    "RENDERED",
    "VARIANTS",
    "container",
    "expand",
    "named",
    "one",
    "pod_spec",
    "server_args",
    "server_env",
]

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VARIANTS = {
    "base": K8S / "base",
    "cpu": K8S / "overlays" / "cpu",
    "surge": K8S / "overlays" / "surge",
    "hpa": K8S / "overlays" / "hpa",
    "7b1": K8S / "overlays" / "7b1",
}
RENDERED = {variant: render(folder) for variant, folder in VARIANTS.items()}


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The only object of ``kind``."""
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of ``kind`` named ``name``."""
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def pod_spec(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    """The pod template's spec of the only ``kind`` (the server's Deployment, or the Job)."""
    return one(objects, kind)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    """The only container of the only ``kind``'s pods."""
    (only,) = pod_spec(objects, kind)["containers"]
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


def server_env(objects: list[dict[str, Any]], item: dict[str, Any] | None = None) -> dict[str, str]:
    """A container's environment (default: the server's): its ConfigMap, then its plain ``env``
    values and ConfigMap keys (a Secret's are left out)."""
    item = item or container(objects)
    settings = named(objects, "ConfigMap", "seqgpt-settings")["data"]
    env: dict[str, str] = {}
    for source in item.get("envFrom", []):
        assert source["configMapRef"]["name"] == "seqgpt-settings"
        env |= settings
    for var in item.get("env", []):
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if "value" in var:
            env[var["name"]] = var["value"]
        elif ref is not None:
            assert ref["name"] == "seqgpt-settings"
            env[var["name"]] = settings[ref["key"]]
    return env


def server_args(objects: list[dict[str, Any]]) -> list[str]:
    """The container's seqgpt-serve serve arguments, expanded from its environment."""
    main = container(objects)
    assert main["command"] == ["seqgpt-serve", "serve"]
    env = server_env(objects)
    return [expand(arg, env) for arg in main["args"]]
