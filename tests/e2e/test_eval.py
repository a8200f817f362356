"""``seqgpt-serve eval --url`` against the shared e2e server (tiny random model): the report's
files, counts that add up to the rows, a valid PNG, and every wrong row's request id in the
server's request log. Random weights answer nonsense: the scores themselves are checked against
a scripted engine (``tests/api/test_eval.py``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image

from loadtest.server import ServerProcess, seqgpt_serve
from tests.docs import section

from .conftest import API_KEY, MAX_TEXT_CHARS

pytestmark = pytest.mark.timeout(600)

LABELS = ["财经", "体育", "娱乐"]
ENV = {"SEQGPT_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS)}  # as the e2e server's


def _eval(rows: list[dict[str, Any]], folder: Path, url: str, *options: str) -> dict[str, Any]:
    source = folder / "rows.jsonl"
    source.write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    report = folder / "report"
    command = [seqgpt_serve(), "eval", str(source), "-o", str(report), "--url", url, *options]
    env = {**os.environ, **ENV, "VLLM_API_KEY": API_KEY}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"report: {report / 'report.md'} (")
    assert {p.name for p in report.iterdir()} >= {"predictions.jsonl", "metrics.json", "report.md"}
    metrics: dict[str, Any] = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["rows"], metrics["scored"] + metrics["errors"]) == (len(rows), len(rows))
    return metrics


def _valid_png(path: Path) -> None:
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pixels = image.imread(path)  # decodes the whole file
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100


def _in_request_log(server: ServerProcess, request_ids: set[str]) -> set[str]:
    """Which of ``request_ids`` the server's request log has (its lines follow the answers)."""
    deadline = time.monotonic() + 10
    while True:
        found = set()
        for line in server.log_path.read_text(encoding="utf-8").splitlines():  # type: ignore[union-attr]
            if '"request_id": ' in line and line.startswith("{"):
                found.add(json.loads(line)["request_id"])
        if request_ids <= found or time.monotonic() > deadline:
            return request_ids & found
        time.sleep(0.1)


def test_classification_report_on_the_real_server(server: ServerProcess, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"id": f"news-{i}", "text": f"第{i}条新闻：球队夺冠，股市大涨。", "label": LABELS[i % 3]}
        for i in range(8)
    ]
    rows.append({"id": "blank", "text": " ", "label": "财经"})  # an error row
    metrics = _eval(rows, tmp_path, server.url, "--task", "classify", "--labels", ",".join(LABELS))
    assert (metrics["scored"], metrics["errors"]) == (8, 1)
    assert metrics["error_rows"][0]["id"] == "blank"
    matrix = metrics["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == 8
    assert sum(row["support"] for row in metrics["labels"]) == 8
    assert metrics["accuracy"] == (8 - metrics["wrong"]) / 8
    _valid_png(tmp_path / "report" / "confusion.png")
    wrong = {row["request_id"] for row in metrics["wrong_rows"]}
    assert len(wrong) == metrics["wrong"]
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert all(f"| {request_id} |" in report for request_id in wrong)
    assert _in_request_log(server, wrong) == wrong


def test_extraction_report_on_the_real_server(server: ServerProcess, tmp_path: Path) -> None:
    rows = [
        {"text": f"{i}号：张三于2023年在北京加入阿里巴巴。", "fields": {"人物": ["张三"]}}
        for i in range(6)
    ]
    metrics = _eval(rows, tmp_path, server.url, "--task", "extract", "--labels", "人物,地点")
    assert (metrics["scored"], metrics["errors"]) == (6, 0)
    for match in ("exact", "overlap"):
        person = next(f for f in metrics[match]["per_field"] if f["field"] == "人物")
        assert person["gold"] == 6
        assert 0 <= person["matched"] <= min(person["gold"], person["predicted"])
    overlap, exact = metrics["overlap"]["micro"], metrics["exact"]["micro"]
    assert overlap["recall"] >= exact["recall"]
    _valid_png(tmp_path / "report" / "fields.png")


def test_schema_report_on_the_real_server(server: ServerProcess, tmp_path: Path) -> None:
    person = {"text": "张三", "fields": {"职位": ["技术总监"], "就职于": ["阿里巴巴"]}}
    rows = [
        {"text": f"{i}号：张三于2023年加入阿里巴巴，担任技术总监。", "fields": {"人物": [person]}}
        for i in range(4)
    ]
    schema = tmp_path / "schema.json"
    schema.write_text('{"人物": ["职位", "就职于"]}', encoding="utf-8")
    metrics = _eval(rows, tmp_path, server.url, "--task", "extract", "--schema", str(schema))
    assert (metrics["scored"], metrics["errors"]) == (4, 0)
    assert {"人物", "人物.职位", "人物.就职于"} <= set(metrics["fields"])
    for match in ("exact", "overlap"):
        per_field = {f["field"]: f for f in metrics[match]["per_field"]}
        assert [per_field[f]["gold"] for f in ("人物", "人物.职位", "人物.就职于")] == [4, 4, 4]
        for scores in per_field.values():
            assert 0 <= scores["matched"] <= min(scores["gold"], scores["predicted"])
    answers = (tmp_path / "report" / "predictions.jsonl").read_text(encoding="utf-8")
    assert all("fields" in json.loads(line) for line in answers.splitlines())
    _valid_png(tmp_path / "report" / "fields.png")


def test_the_docs_example(server: ServerProcess, tmp_path: Path) -> None:
    """The --url commands of docs/ui-and-batch-cli.md's eval section against the e2e server, in
    a fresh folder whose .venv is this one (the --model one names the hub model: no network)."""
    text = section("docs/ui-and-batch-cli.md", "## Evaluation on labelled data")
    (block,) = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = block.replace("\\\n", "").strip().splitlines()
    assert len(commands) == 4
    assert "--model DAMO-NLP/SeqGPT-560M" in commands[3]
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {**os.environ, **ENV, "VLLM_API_KEY": API_KEY}
    script = "\n".join(commands[:2]).replace("http://localhost:8000", server.url)
    subprocess.run(["bash", "-ec", script], cwd=tmp_path, env=env, check=True, timeout=300)
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["rows"], metrics["scored"]) == (2, 2)
    assert metrics["wrong"] == 2 - round(2 * metrics["accuracy"])
