"""Offline validation of what deploy/k8s renders, as strict as ``kubectl apply --validate=strict``.

Kubernetes' own kinds are checked against kubernetes-validate's bundled schemas; the custom
resources (KEDA's ScaledObject, prometheus-operator's PodMonitor and PrometheusRule) against the
``openAPIV3Schema`` of their CRDs, vendored unchanged in ``tests/deploy/crds/`` (its README names
the releases). A CRD's schema lets unknown fields through, and the API server would drop them
without a word (a misspelt ``fallback`` would simply never apply), so every object schema that
lists its properties is closed here (``additionalProperties: false``) unless it says
``x-kubernetes-preserve-unknown-fields``, as strict field validation does.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

__all__ = ["CRDS", "custom_kinds", "validate"]

CRDS = Path(__file__).resolve().parent / "crds"
# libyaml's loader where PyYAML has it: the LeaderWorkerSet CRD (1.3 MB, two pod templates'
# schemas) takes 15 s to read in pure Python, under 2 s with it.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every object that lists its properties closed to others."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: _closed(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _closed(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _closed(out["additionalProperties"])
    for key in _COMBINATORS:
        if key in out:
            out[key] = [_closed(sub) for sub in out[key]]
    return out


@functools.cache
def custom_kinds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the closed schema, for every served version of every vendored CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = _closed(version["schema"]["openAPIV3Schema"])
                found[(f"{group}/{version['name']}", kind)] = schema
    return found


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise if ``obj`` is not valid for Kubernetes ``version`` (its CRD's schema for a custom
    resource, whatever the version)."""
    schema = custom_kinds().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        kubernetes_validate.validate(obj, version, strict=True)
        return
    # Not checked against the metaschema: CRD patterns are Go's (RE2), and one of them
    # ("^(?i)(abort|warn)?$") is not a Python regex; no field of ours meets it.
    jsonschema.Draft7Validator(schema).validate(obj)
    name = obj["metadata"]["name"]  # the schema says only "object" of metadata
    assert isinstance(name, str), obj["metadata"]
    assert name, obj["metadata"]
