"""A small stand-in for ``kustomize build``: just what deploy/k8s uses, and loud about the rest.

A kustomization here has ``resources`` (files, or folders holding a kustomization) and
``patches`` with a ``target`` naming the objects to patch by kind, name and optionally group and
version. A patch file is either a JSON 6902 patch (a list of operations, applied with
``jsonpatch``) or the one strategic-merge patch an overlay needs to leave an object of its base
out: ``$patch: delete`` with the target's apiVersion, kind and name. Any other field or patch
fails, so this cannot quietly render something kustomize would render differently (where kubectl
is installed, a test compares the two).
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
        body = yaml.safe_load((folder / patch["path"]).read_text())
        hits = [i for i, obj in enumerate(objects) if _matches(obj, target)]
        if not hits:
            raise ValueError(f"{folder}: patch {patch['path']} matches no object")
        if isinstance(body, dict):
            _check_deletion(folder, body, [objects[i] for i in hits])
            objects = [obj for i, obj in enumerate(objects) if i not in hits]
            continue
        operations = jsonpatch.JsonPatch(body)
        for i in hits:
            objects[i] = operations.apply(objects[i])
    return objects


def _check_deletion(folder: Path, body: dict[str, Any], hits: list[dict[str, Any]]) -> None:
    """``body`` is ``$patch: delete`` naming exactly the objects it deletes."""
    if set(body) != {"$patch", "apiVersion", "kind", "metadata"} or body["$patch"] != "delete":
        raise ValueError(f"{folder}: a strategic-merge patch other than a deletion: {body}")
    if set(body["metadata"]) != {"name"}:
        raise ValueError(f"{folder}: a deletion names its object by name only: {body}")
    named = (body["apiVersion"], body["kind"], body["metadata"]["name"])
    for obj in hits:
        if (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) != named:
            raise ValueError(f"{folder}: deletion of {named} targets {obj['metadata']['name']}")
