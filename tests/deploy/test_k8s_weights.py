"""deploy/k8s's weights: one hub cache (a ReadWriteMany claim) that the Job seqgpt-weights fills
once with SEQGPT_MODEL at SEQGPT_REVISION, which every replica mounts read-only and serves
offline at that same revision, each pod waiting until the Job has finished. The Job's script and
the pods' wait run here, through the real /bin/sh, with a stand-in ``hf`` on PATH.

Seen on this machine (not a test: it needs a mount namespace and a server start): the tiny model
served from a read-only hub cache with HF_HUB_OFFLINE=1 and a pinned ``--revision``, the root
filesystem read-only (test_k8s_security.py's docstring).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serving.process.server import parse_vllm_args
from tests.deploy.k8s import RENDERED, container, expand, one, pod_spec, server_args, server_env

HF = Path(sys.executable).with_name("hf")
FAKE_HF = """#!/bin/sh
# hf download MODEL --revision REVISION, as the stand-in of the real one: a file in the cache
[ "$1" = download ] && [ "$3" = --revision ] || exit 2
[ -n "$FAIL" ] && exit 1
mkdir -p "$HF_HOME/hub/$2/$4" && touch "$HF_HOME/hub/$2/$4/config.json"
"""


def _init(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (wait,) = pod_spec(objects)["initContainers"]
    return wait  # type: ignore[no-any-return]


def _mount(item: dict[str, Any], volume: str) -> dict[str, Any]:
    (mount,) = [m for m in item["volumeMounts"] if m["name"] == volume]
    return mount  # type: ignore[no-any-return]


def _claim(objects: list[dict[str, Any]], kind: str, volume: str) -> dict[str, Any]:
    (found,) = [v for v in pod_spec(objects, kind)["volumes"] if v["name"] == volume]
    return found["persistentVolumeClaim"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_one_claim_the_job_writes_and_every_replica_reads(variant: str) -> None:
    objects = RENDERED[variant]
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # replicas on any node
    name = claim["metadata"]["name"]
    job = container(objects, "Job")
    assert _claim(objects, "Job", "hub-cache") == {"claimName": name}
    assert not _mount(job, "hub-cache").get("readOnly")
    assert _claim(objects, "Deployment", "hub-cache") == {"claimName": name, "readOnly": True}
    for item in [_init(objects), container(objects)]:
        mount = _mount(item, "hub-cache")
        assert mount["readOnly"] is True
        assert mount["mountPath"] == server_env(objects, item)["HF_HOME"]
    assert _mount(job, "hub-cache")["mountPath"] == server_env(objects, job)["HF_HOME"]


@pytest.mark.parametrize("variant", sorted(RENDERED))
def test_every_replica_serves_the_revision_the_job_downloaded_offline(variant: str) -> None:
    objects = RENDERED[variant]
    settings = one(objects, "ConfigMap")["data"]
    assert settings["SEQGPT_REVISION"]
    args = parse_vllm_args(server_args(objects))
    pinned = (settings["SEQGPT_MODEL"], settings["SEQGPT_REVISION"])
    assert (args.model, args.revision) == pinned
    for item in [container(objects, "Job"), _init(objects), container(objects)]:
        env = server_env(objects, item)
        assert (env["SEQGPT_MODEL"], env["SEQGPT_REVISION"]) == pinned, item["name"]
    assert server_env(objects)["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in server_env(objects, container(objects, "Job"))


def _run(item: dict[str, Any], env: dict[str, str], **options: Any) -> str:
    """Run container ``item``'s shell command with ``env``; its output."""
    command = [expand(word, env) for word in item["command"] + item["args"]]
    assert command[:2] == ["/bin/sh", "-c"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, **options)
    return done.stdout


def test_the_job_fills_the_cache_and_pods_wait_until_it_has(tmp_path: Path) -> None:
    objects = RENDERED["base"]
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "hf"
    fake.write_text(FAKE_HF)
    fake.chmod(0o755)
    cache = tmp_path / "cache"
    job, wait = container(objects, "Job"), _init(objects)

    def env(item: dict[str, Any], **extra: str) -> dict[str, str]:
        path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
        return server_env(objects, item) | {"HF_HOME": str(cache), "PATH": path} | extra

    with pytest.raises(subprocess.TimeoutExpired) as waiting:
        _run(wait, env(wait), timeout=2)
    assert b"waiting for the Job seqgpt-weights" in (waiting.value.stdout or b"")
    _run(job, env(job, FAIL="1"), check=False)  # a failed download leaves no marker
    with pytest.raises(subprocess.TimeoutExpired):
        _run(wait, env(wait), timeout=2)
    _run(job, env(job), check=True)
    model, revision = (env(job)[name] for name in ("SEQGPT_MODEL", "SEQGPT_REVISION"))
    assert (cache / "hub" / model / revision / "config.json").exists()  # what hf was asked
    _run(wait, env(wait), check=True, timeout=5)  # done: the pods start


def test_hf_download_takes_the_jobs_options() -> None:
    shown = subprocess.run(
        [str(HF), "download", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--revision" in shown
    script = container(RENDERED["base"], "Job")["args"][0]
    assert 'hf download "$SEQGPT_MODEL" --revision "$SEQGPT_REVISION"' in script
