"""The client is light: a user's program that imports it loads neither the engine nor the
server's libraries, only the standard library and what the client's own dependencies bring."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

# The client's declared dependencies (pyproject.toml): what a user's program installs for it.
CLIENT_DEPENDENCIES = ("httpx", "pydantic")
SERVER_SIDE = (
    "vllm",
    "torch",
    "transformers",
    "fastapi",
    "starlette",
    "gradio",
    "uvicorn",
    "prometheus_client",
    "serving.core",
    "serving.process",
)
# A fresh interpreter: the modules loaded before, then those an import and a client add.
PROGRAM = """
import json, sys
before = set(sys.modules)
import serving.client
serving.client.SeqGPTClient("http://127.0.0.1:9")
serving.client.AsyncSeqGPTClient("http://127.0.0.1:9")
new = sorted(set(sys.modules) - before)
print(json.dumps({m: getattr(sys.modules[m], "__file__", None) for m in new}))
"""


@functools.cache
def _loaded() -> dict[str, str | None]:
    """What the client loads in a fresh interpreter: each module's name and file."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, str | None] = json.loads(done.stdout)
    return loaded


def _standard(module: str, file: str | None) -> bool:
    """Part of Python itself: a standard module, or a file of the standard library's folder."""
    if module.split(".")[0] in sys.stdlib_module_names:
        return True
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return file is not None and "site-packages" not in file and stdlib in Path(file).parents


def _requirements(distribution: str, seen: set[str]) -> set[str]:
    """``distribution`` and everything it may bring, optional extras included (normalized)."""
    name = re.sub(r"[-_.]+", "-", distribution).lower()
    if name in seen:
        return seen
    seen.add(name)
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:  # an extra that is not installed loads nothing
        return seen
    for requirement in requires:
        _requirements(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0], seen)
    return seen


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    wrong = [m for m in _loaded() if any(m == s or m.startswith(s + ".") for s in SERVER_SIDE)]
    assert wrong == []


def test_the_client_loads_only_the_standard_library_and_its_dependencies() -> None:
    allowed: set[str] = set()
    for dependency in CLIENT_DEPENDENCIES:
        _requirements(dependency, allowed)
    owners = metadata.packages_distributions()
    ours = {"serving", "prompts"}  # the client and the contract's pure prompt checks
    stray = sorted(
        {
            module.split(".")[0]
            for module, file in _loaded().items()
            if not _standard(module, file)
            and module.split(".")[0] not in ours
            and not any(
                re.sub(r"[-_.]+", "-", d).lower() in allowed
                for d in owners.get(module.split(".")[0], [])
            )
        }
    )
    assert stray == []
