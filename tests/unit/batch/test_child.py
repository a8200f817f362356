"""A ``--model`` batch's child gets its job on its stdin, not its command line: a legal schema
of 64 fields × 6 children × 6 grandchildren with long names is over the 128 KiB Linux allows
one argument (it was a traceback, E2BIG, before the child could start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.batch.child import run_in_child

NAME = "很长的字段名称" * 9  # 63 characters, 189 bytes in UTF-8


def _big_schema() -> dict[str, dict[str, list[str]]]:
    return {
        f"{NAME}{i}": {f"{NAME}{i}.{j}": [f"{NAME}{i}.{j}.{k}" for k in range(6)] for j in range(6)}
        for i in range(64)
    }


def test_a_schema_over_the_argument_limit_reaches_the_child(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    schema = _big_schema()
    assert len(json.dumps(schema, ensure_ascii=False).encode()) > 128 * 1024
    missing = tmp_path / "missing.jsonl"
    job = {"task": "extract", "input": str(missing), "output": str(tmp_path / "out.jsonl")}
    job |= {"schema": schema, "max_row_bytes": 1 << 20}
    # The child reads its whole job, then stops at the missing INPUT before any engine work.
    assert run_in_child(job, "no-model", {}) == 2
    err = capfd.readouterr().err
    assert f"{missing} is not a file" in err
    assert "Traceback" not in err
