"""The layers of ARCHITECTURE.md, checked from the code's own imports (parsed with ``ast``, every
import counted: module level, inside functions and under ``TYPE_CHECKING``).

A folder may import its own modules and the layers below it, never a layer above or beside it:

    serving.cli, serving.plugin, serving.entry     programs and the composition root
    serving.http, serving.ui, serving.batch        the front ends (never one another)
    serving.client                                 the Python client of a server (over HTTP)
    serving.contract, serving.process,             bodies every front end shares; processes;
    serving.testmodels                             test checkpoints (never one another)
    serving.core                                   the task core
    prompts, parsers                               pure functions

and ``PURE`` modules (eval's metrics, in ``serving.batch``) import the standard library alone.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _TIERS

ROOT = Path(__file__).resolve().parents[2]
RANKS = {
    "prompts": 0,
    "parsers": 0,
    "serving.core": 1,
    "serving.contract": 2,
    "serving.process": 2,
    "serving.testmodels": 2,
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
    # Test checkpoints: torch and transformers, never the server's libraries or its core.
    "serving.testmodels": {"vllm", "fastapi", "starlette", "gradio", "serving.core"},
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
    """Every import counts, a function's too: a circle through a deferred import is still two
    modules that cannot be understood, tested or moved one without the other."""
    graph = {
        name: {imported for imported in _imports(path, name) if imported in MODULES}
        for name, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail(" -> ".join([*trail[trail.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name] - {name}):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


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


def _deferred_imports(path: Path) -> Iterator[tuple[int, ast.stmt]]:
    """Each block of imports inside a function of ``path`` (its first statement's line)."""
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            body = getattr(node, "body", None)
            if not isinstance(body, list):
                continue
            previous: ast.stmt | None = None
            for statement in body:
                is_import = isinstance(statement, ast.Import | ast.ImportFrom)
                if is_import and not isinstance(previous, ast.Import | ast.ImportFrom):
                    yield statement.lineno, statement
                previous = statement


# Modules other branches were rewriting when this check came (issue 26): their deferred imports
# get their reasons when those land. Nothing is added here.
@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("serving")))
def test_every_deferred_import_says_why(module: str) -> None:
    """An import inside a function (start-up cost, an optional dependency, a patch) has its
    reason in a comment on its line or the line above, or in its function's docstring."""
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").splitlines()
    silent = [
        f"{path.name}:{line}: {lines[line - 1].strip()}"
        for line, _ in _deferred_imports(path)
        if "#" not in lines[line - 1] and not lines[line - 2].strip().startswith("#")
    ]
    assert silent == [], "say why each import is deferred"


def test_every_test_tier_folder_has_its_marker() -> None:
    """``tests/<tier>/`` marks its tests ``-m <tier>`` (tests/conftest.py), a marker pyproject
    declares (``--strict-markers``)."""
    tiers = {p.name for p in (ROOT / "tests").iterdir() if any(p.glob("test_*.py"))}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {m.split(":")[0] for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]}
    assert tiers - set(_TIERS) == set()
    assert tiers - declared == set()


def test_the_engine_seam_is_typed_as_vllm_types_it() -> None:
    """Every ``engine``/``engine_client`` parameter is vLLM's ``EngineClient``, never ``Any``."""
    untyped = [
        f"{module}:{arg.lineno}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for arg in [*node.args.args, *node.args.kwonlyargs]
        if arg.arg in {"engine", "engine_client"}
        and ast.unparse(arg.annotation or ast.Name("Any")) == "Any"
    ]
    assert untyped == []


MAP = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
CODE = re.compile(r"`([^`\n]+)`")


def _defined(path: Path) -> set[str]:
    """The top-level names a module defines or imports."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
            star = isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
            if star and node.module in MODULES:
                names |= _defined(MODULES[node.module])
    return names


def _resolves(token: str) -> bool:
    """A dotted ``serving``/``prompts``/``parsers`` name: a module, or a module's name."""
    parts = token.split(".")
    for n in range(len(parts), 0, -1):
        module = ".".join(parts[:n])
        if module in MODULES:
            return n == len(parts) or parts[n] in _defined(MODULES[module])
    return False


def _sections() -> dict[str, str]:
    """The map's ``### `serving/x/`…`` sections by folder name."""
    parts = re.split(r"^### ", MAP, flags=re.MULTILINE)
    return {
        match.group(1): part for part in parts if (match := re.match(r"`serving/(\w+)/`", part))
    }


def test_the_map_names_every_serving_folder_and_module() -> None:
    sections = _sections()
    folders = {p.parent.name for p in (ROOT / "serving").glob("*/__init__.py")}
    assert folders - set(sections) == set(), "give each folder a section in ARCHITECTURE.md"
    missing = [
        f"serving.{folder}.{path.stem}"
        for folder in sorted(folders)
        for path in sorted((ROOT / "serving" / folder).glob("*.py"))
        if path.stem != "__init__"
        and f"`{path.stem}`" not in sections[folder]
        and f"`serving.{folder}.{path.stem}`" not in sections[folder]
    ]
    assert missing == [], "name each module in its folder's section"


def test_every_name_and_path_the_map_gives_exists() -> None:
    defined = set().union(*(_defined(path) for path in MODULES.values()))
    wrong = []
    for token in sorted(set(CODE.findall(MAP))):
        dotted = re.fullmatch(r"(serving|prompts|parsers)(\.\w+)+", token)
        named = re.fullmatch(r"[A-Z][a-z]+([A-Z]\w*)?(\.\w+)?", token)
        path = "/" in token and not token.startswith("/") and re.fullmatch(r"[\w./-]+", token)
        if (
            (dotted and not _resolves(token))
            or (named and token.split(".")[0] not in defined | {"EngineClient"})
            or (path and not (ROOT / token).exists())
        ):
            wrong.append(token)
    assert wrong == [], "ARCHITECTURE.md names what the code does not have"
