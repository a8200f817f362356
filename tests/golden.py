"""Golden files' scripts: each golden folder holds a ``regenerate.py`` that lists the cases and
renders them; tests load it by path (it is a script, not a package module)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_regenerate(folder: Path, name: str) -> ModuleType:
    """``folder/regenerate.py`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, folder / "regenerate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolves string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
