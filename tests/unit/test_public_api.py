"""Each package's public surface: ``__all__`` is exactly what it exports, and it is typed."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import parsers
import prompts
import serving

ROOT = Path(__file__).resolve().parents[2]

EXPECTED: dict[str, set[str]] = {
    "prompts": {
        "GEN_MARKER",
        "MAX_LABEL_CHARS",
        "LabelError",
        "build_classify_prompt",
        "build_extract_prompts",
        "chunk_labels",
        "neutralize_text",
        "parse_labels",
        "split_labels",
        "unicode_error",
        "validate_labels",
    },
    "parsers": {
        "Extraction",
        "Span",
        "drop_nested_spans",
        "parse_classification",
        "parse_extraction",
        "parse_extraction_detailed",
    },
    "serving": {"__version__"},
}
PACKAGES: dict[str, ModuleType] = {"prompts": prompts, "parsers": parsers, "serving": serving}
# Submodules of the pure packages: cheap to import, each with its own __all__.
PURE_MODULES = [
    "prompts.seqgpt",
    "parsers.classification",
    "parsers.extraction",
    "parsers.grounding",
    "parsers.normalize",
    "parsers.spans",
]


def _public_names(package: ModuleType) -> set[str]:
    """Names a ``from package import *`` user could reach, submodules aside."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_all_is_exactly_the_expected_names(name: str) -> None:
    package = PACKAGES[name]
    assert len(package.__all__) == len(set(package.__all__)), "duplicates in __all__"
    assert set(package.__all__) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_all_is_exactly_what_the_package_exposes(name: str) -> None:
    package = PACKAGES[name]
    assert _public_names(package) == set(package.__all__) - {"__version__"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)  # the way users meet __all__
    for public in EXPECTED[name]:
        assert public in namespace, public
        assert getattr(importlib.import_module(name), public) is namespace[public]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_callables_have_docstrings(name: str) -> None:
    package = PACKAGES[name]
    for public in package.__all__:
        value = getattr(package, public)
        if callable(value):
            assert value.__doc__, public


@pytest.mark.parametrize("module_name", PURE_MODULES)
def test_submodule_all_names_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_package_ships_py_typed(name: str) -> None:
    assert (ROOT / name / "py.typed").is_file()
    assert Path(PACKAGES[name].__file__ or "").parent == ROOT / name


def test_py_typed_is_packaged() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    package_data = config["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["*"]


def test_version_matches_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert serving.__version__ == config["project"]["version"]


def test_importing_the_packages_stays_light() -> None:
    """Nothing heavy at import: no engine, no web framework, no tensors (STYLE.md)."""
    heavy = ["vllm", "torch", "transformers", "fastapi", "numpy"]
    code = (
        "import sys, prompts, parsers, serving\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "serving").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_serving_module_declares_its_surface(path: Path) -> None:
    """Read, not imported (the HTTP and UI modules pull in vLLM and Gradio)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert len(assigned) == 1, "one __all__"
    names = ast.literal_eval(assigned[0])  # type: ignore[arg-type]
    assert not set(names) - _top_level_names(tree), "names in __all__ that it does not define"
