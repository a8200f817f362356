"""The layers of ARCHITECTURE.md, checked from the code's own imports (parsed with ``ast``, every
import counted: module level, inside functions and under ``TYPE_CHECKING``).

A folder may import its own modules and the layers below it, never a layer above or beside it:

    serving.cli, serving.plugin, serving.entry     programs and the composition root
    serving.http, serving.ui, serving.batch        the front ends (never one another)
    serving.client                                 the Python client of a server (over HTTP)
    serving.contract, serving.process              bodies every front end shares; processes
    serving.core                                   the task core
    prompts, parsers                               pure functions

and ``PURE`` modules (eval's metrics, in ``serving.batch``) import the standard library alone.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RANKS = {
    "prompts": 0,
    "parsers": 0,
    "serving.core": 1,
    "serving.contract": 2,
    "serving.process": 2,
    "serving.client": 3,
    "serving.http": 4,
    "serving.ui": 4,
    "serving.batch": 4,
    "serving.cli": 5,
    "serving.plugin": 5,
    "serving.entry": 5,
}
# Libraries a layer never imports (invariants written as absence).
FORBIDDEN = {
    "prompts": {"vllm", "torch", "transformers", "fastapi", "starlette", "serving"},
    "parsers": {"vllm", "torch", "transformers", "fastapi", "starlette", "serving"},
    "serving.core": {"fastapi", "starlette", "gradio", "uvicorn", "httpx"},
    "serving.contract": {"fastapi", "starlette", "gradio", "uvicorn"},
    "serving.ui": {"serving.http", "prompts", "parsers"},
    # The client runs in a user's program and reaches the server over HTTP only.
    "serving.client": {
        "vllm",
        "torch",
        "transformers",
        "fastapi",
        "starlette",
        "gradio",
        "uvicorn",
        "serving.core",
        "serving.process",
    },
}
# Pure modules inside a front end's folder: the standard library only (no I/O library, no
# serving, no plotting), so they are tested as the pure packages are.
PURE = {"serving.batch.metrics"}


def _modules() -> Iterator[tuple[str, Path]]:
    for folder in ("serving", "prompts", "parsers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _unit(module: str) -> str | None:
    """The layer a module belongs to: the longest ``RANKS`` key that is it or contains it."""
    units = [unit for unit in RANKS if module == unit or module.startswith(unit + ".")]
    return max(units, key=len) if units else None


MODULES = dict(_modules())


def test_every_module_has_a_layer() -> None:
    homeless = [name for name in MODULES if name != "serving" and _unit(name) is None]
    assert homeless == [], "give each module a folder with a rank in RANKS"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    unit = _unit(module)
    if unit is None:
        return
    wrong = sorted(
        imported
        for imported in _imports(MODULES[module], module)
        if (other := _unit(imported)) not in (None, unit) and RANKS[other] >= RANKS[unit]
    )
    assert wrong == [], f"{module} ({unit}, rank {RANKS[unit]}) imports up or sideways"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_layer_imports_what_it_must_not(module: str) -> None:
    unit = _unit(module)
    banned = FORBIDDEN.get(unit or "", set())
    wrong = sorted(
        imported
        for imported in _imports(MODULES[module], module)
        if any(imported == name or imported.startswith(name + ".") for name in banned)
    )
    assert wrong == [], f"{module} must not import {sorted(banned)}"


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_modules_import_only_the_standard_library(module: str) -> None:
    imported = {name.split(".")[0] for name in _imports(MODULES[module], module)}
    assert imported - {"__future__"} <= sys.stdlib_module_names, module


def test_no_import_circle_between_modules() -> None:
    """Module-level imports only (a function-level import cannot deadlock at import)."""
    graph = {
        name: {imported for imported in _top_level_imports(path, name) if imported in MODULES}
        for name, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail(" -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def _top_level_imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)])
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in top.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or package
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_every_folder_says_what_it_owns_and_may_import() -> None:
    for init in sorted((ROOT / "serving").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc.split()) >= 30, f"{init}: a paragraph on what it owns"
        assert "import" in doc, f"{init}: what it may import"


def test_unit_tests_mirror_the_layout() -> None:
    """``tests/unit/<folder>/test_x.py`` tests ``serving/<folder>/`` (or a top-level package)."""
    tests = ROOT / "tests" / "unit"
    homes = {p.name for p in (ROOT / "serving").iterdir() if (p / "__init__.py").is_file()}
    homes |= {"prompts", "parsers", "loadtest", "docs"}
    folders = {p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= homes, folders - homes
    assert {p.name for p in tests.glob("*.py")} <= {
        "__init__.py",
        "test_architecture.py",
        "test_public_api.py",
    }
