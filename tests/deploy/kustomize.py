"""A small stand-in for ``kustomize build``: just what deploy/k8s uses, and loud about the rest.

A kustomization here has ``resources`` (files, or folders holding a kustomization) and
``patches`` whose files are JSON 6902 patches (a list of operations) with a ``target`` naming
the objects to patch by kind, name and optionally group and version; they are applied with
``jsonpatch``. Any other field fails, so this cannot quietly render something kustomize would
render differently (where kubectl is installed, a test compares the two).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

__all__ = ["load_documents", "render"]

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "patches"}
TARGET_FIELDS = {"group", "version", "kind", "name"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of ``path`` (empty ones skipped)."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def _matches(obj: dict[str, Any], target: dict[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": obj["kind"]}
    wanted["name"] = obj["metadata"]["name"]
    return all(wanted[field] == value for field, value in target.items())


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build folder`` makes, for the fields listed above."""
    (kustomization,) = load_documents(folder / "kustomization.yaml")
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{folder}: kustomization fields this renderer does not know: {unknown}")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        objects += render(path) if path.is_dir() else load_documents(path)
    objects = copy.deepcopy(objects)
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        if set(target) - TARGET_FIELDS or set(patch) != {"path", "target"}:
            raise ValueError(f"{folder}: only JSON 6902 patches with a plain target: {patch}")
        operations = jsonpatch.JsonPatch(yaml.safe_load((folder / patch["path"]).read_text()))
        hits = [i for i, obj in enumerate(objects) if _matches(obj, target)]
        if not hits:
            raise ValueError(f"{folder}: patch {patch['path']} matches no object")
        for i in hits:
            objects[i] = operations.apply(objects[i])
    return objects
