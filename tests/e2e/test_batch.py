"""``seqgpt-serve extract`` over a 40-row file on the tiny model, both ways: vLLM in the
command's own process (``--model``) and the shared e2e server (``--url``, with its key).

Each way is stopped with SIGINT to its process group (as a terminal's Ctrl-C) once a few rows
are written, then run again to the end: every input row appears exactly once in OUTPUT, bad rows
are error rows (a 1 MB row over the limit SEQGPT_MAX_TEXT_CHARS gives too), and nothing of the
stopped run is left running. The two outputs then agree on every row's shape, errors and prompt
tokens (same prompts, checks and errors).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from loadtest.server import ServerProcess, seqgpt_serve, session_processes
from tests.docs import section
from tests.servers import DTYPE_FLAGS

from .conftest import API_KEY, MAX_TEXT_CHARS

pytestmark = pytest.mark.timeout(600)

LABELS = "人物,地点,组织机构,时间,事件,产品"
ENV = {  # as the e2e server's
    "SEQGPT_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
    "SEQGPT_MAX_LABELS": "20",
    "SEQGPT_SPAN_TOKENS_PER_LABEL": "8",
}
BAD = {  # row -> the param its error names (None: the line itself)
    7: None,  # invalid JSON
    12: "id",  # repeats the id of row 2
    18: "text",  # no text
    23: "text",  # blank text
    29: "labels",  # a label holding a comma
    33: "text",  # over the server's text limit
    38: None,  # over the row size limit that text limit gives (never read: no field named)
}
ROW_LIMIT = 12 * MAX_TEXT_CHARS + 1024 * 1024
ROWS_BEFORE_STOP = 4
OUTPUTS: dict[str, list[dict[str, Any]]] = {}


def _rows() -> list[str]:
    lines = []
    for number in range(1, 41):
        row: dict[str, Any] = {
            "id": f"doc-{number}",
            "text": f"{number}号：张三于2023年在北京加入阿里巴巴。",
        }
        if number % 5 == 0:
            row["labels"] = ["人物", "时间"]  # its own labels
        if number == 12:
            row["id"] = "doc-2"
        elif number == 18:
            del row["text"]
        elif number == 23:
            row["text"] = "  "
        elif number == 29:
            row["labels"] = ["人物", "地,点"]
        elif number == 33:
            row["text"] = "长" * (MAX_TEXT_CHARS + 1)
        elif number == 38:
            row["note"] = "x" * ROW_LIMIT  # a field the command ignores, when it reads the row
        lines.append(json.dumps(row, ensure_ascii=False))
    lines[6] = '{"id": "doc-7", "text": "cut'
    return lines


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "rows.jsonl"
    path.write_text("\n".join(_rows()) + "\n", encoding="utf-8")
    return path


def _command(rows: Path, output: Path, mode: str, tiny_model: Path, url: str) -> list[str]:
    command = [seqgpt_serve(), "extract", str(rows), "-o", str(output), "--labels", LABELS]
    command += ["--concurrency", "2"]  # slow enough to be stopped mid-run
    if mode == "model":
        return [*command, "--model", str(tiny_model), *DTYPE_FLAGS, "--enforce-eager"]
    return [*command, "--url", url]


def _lines(output: Path) -> list[str]:
    return output.read_text(encoding="utf-8").splitlines() if output.exists() else []


def _stop_mid_run(command: list[str], env: dict[str, str], output: Path, log: Path) -> str:
    """Run ``command``, SIGINT its process group once a few rows are written; its stderr."""
    with log.open("wb") as err:
        process = subprocess.Popen(command, env=env, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(_lines(output)) < ROWS_BEFORE_STOP:
            assert process.poll() is None, log.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, "no rows written in 300 s"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C
        assert process.wait(timeout=120) == 128 + signal.SIGINT
        deadline = time.monotonic() + 30
        while left := session_processes(process.pid):  # the engine, if any, stopped too
            assert time.monotonic() < deadline, f"left running: {left}"
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return log.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", ["model", "url"])
def test_stop_and_resume_answers_every_row_once(
    mode: str, rows: Path, tiny_model: Path, server: ServerProcess, tmp_path: Path
) -> None:
    output = tmp_path / "out.jsonl"
    env = {**os.environ, **ENV, "VLLM_API_KEY": API_KEY}
    command = _command(rows, output, mode, tiny_model, server.url)

    stderr = _stop_mid_run(command, env, output, tmp_path / "first.log")
    written = _lines(output)
    assert output.read_bytes().endswith(b"\n")
    assert ROWS_BEFORE_STOP <= len(written) < 40
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "EngineCore encountered a fatal error" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped: {len(written)} rows"), last
    assert last.endswith("rerun the same command to resume")

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith(f"done: {40 - len(written)} rows, ")
    assert f" {len(written)} skipped " in last

    results = [json.loads(line) for line in _lines(output)]
    assert _lines(output)[: len(written)] == written  # appended, never rewritten
    assert Counter(result["row"] for result in results) == Counter(range(1, 41))
    ids = [result["id"] for result in results if result["id"] is not None]
    assert len(ids) == len(set(ids)) == 38  # no id for row 12 (a repeated one) nor row 38
    for result in results:
        _check(result)
    OUTPUTS[mode] = results


def _check(result: dict[str, Any]) -> None:
    number = result["row"]
    if number in BAD:
        error = result["error"]
        assert set(error) == {"message", "type", "param", "code"}
        status = 413 if number in (33, 38) else 400  # over a limit: too large, not invalid
        assert (error["code"], error["param"]) == (status, BAD[number]), result
        assert result["id"] == {7: 7, 12: None, 38: None}.get(number, f"doc-{number}")
        return
    assert result["id"] == f"doc-{number}"
    assert result["request_id"] == f"batch-doc-{number}"  # the server's X-Request-Id for it
    keys = {"id", "row", "request_id", "fields", "ungrounded", "windows", "truncated", "usage"}
    assert set(result) == keys, result
    labels = ["人物", "时间"] if number % 5 == 0 else LABELS.split(",")
    assert list(result["fields"]) == labels
    assert result["usage"]["prompt_tokens"] > 0


def test_both_ways_agree_on_every_row() -> None:
    if set(OUTPUTS) != {"model", "url"}:
        pytest.skip("needs both runs above")
    model, url = ({r["row"]: r for r in OUTPUTS[mode]} for mode in ("model", "url"))
    for number, row in model.items():
        other = url[number]
        assert set(row) == set(other), number
        if "error" in row:
            assert row == other
        else:  # same prompts: same tokens (random weights may answer differently per batch)
            assert row["usage"]["prompt_tokens"] == other["usage"]["prompt_tokens"], number


def test_the_readme_example(server: ServerProcess, tmp_path: Path) -> None:
    """The batch commands of docs/ui-and-batch-cli.md, in a fresh folder whose .venv is this one:
    the --url one against the e2e server; the --model one names the hub model (no network here)."""
    text = section("docs/ui-and-batch-cli.md", "## Batch jobs")
    (block,) = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = block.replace("\\\n", "").strip().splitlines()
    assert len(commands) == 3
    assert "--model DAMO-NLP/SeqGPT-560M" in commands[2]
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {**os.environ, "VLLM_API_KEY": API_KEY}
    script = "\n".join(commands[:2]).replace("http://localhost:8000", server.url)
    subprocess.run(["bash", "-ec", script], cwd=tmp_path, env=env, check=True, timeout=120)
    lines = (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    results = {r["id"]: r for r in map(json.loads, lines)}
    assert results["n1"]["label"] in ["财经", "体育", "娱乐", "科技"]
    assert results["n2"]["label"] in ["人物", "时间"]  # its own labels
