"""``seqgpt-serve classify`` and ``extract``: help, and usage errors as one line with status 2
(the runs themselves: tests/e2e/test_batch.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from serving.batch.job import BatchJob
from serving.cli.app import main


@pytest.mark.parametrize("command", ["classify", "extract"])
def test_help_says_formats_engines_resume_and_exit_status(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for words in [
        f"Usage: seqgpt-serve {command}",
        "JSONL (or CSV",
        "--labels",
        "run the same command again to resume",
        "--model",
        "--url",
        "--api-key",
        "VLLM_API_KEY",
        "--concurrency",
        "--enforce-eager",
        "--dtype",
        "--max-model-len",
        "--max-row-bytes",
        "a row over --max-row-bytes is a 413 error row, skipped without being read whole",
        "SEQGPT_MAX_TEXT_CHARS",
        "Exit status",
    ]:
        assert words in out, words
    assert ("--multi-label" in out) == (command == "classify")
    assert ("--schema" in out) == (command == "extract")


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n")
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "pass --model DIR (vLLM in this process) or --url URL"),
        (["--model", "m", "--url", "http://x"], "pass --model DIR"),
        (["--url", "http://x", "--dtype", "float32"], "--dtype set the in-process engine"),
        (["--url", "http://x", "--enforce-eager"], "--enforce-eager set the in-process engine"),
        (["--url", "localhost:8000"], "--url must start with http:// or https://"),
        (["--model", "m", "--dtype", "fp8"], "--dtype must be one of"),
        (["--url", "http://x", "--concurrency", "0"], "--concurrency"),
        (["--model", "./no/such/model"], "no/such/model"),
    ],
)
def test_usage_errors_are_one_line(
    rows: Path, tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["classify", str(rows), "-o", str(tmp_path / "out.jsonl"), "--labels", "a", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_settings_stop_an_in_process_run_before_vllm_starts(
    rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEQGPT_MAX_LABELS", "none")
    monkeypatch.setenv("SEQGPT_CHUNK_SIZE", "0")
    model = tmp_path / "model"
    model.mkdir()
    argv = ["extract", str(rows), "-o", str(tmp_path / "out.jsonl"), "--model", str(model)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].split("=")[0].strip() for line in err] == [
        "SEQGPT_MAX_LABELS",
        "SEQGPT_CHUNK_SIZE",
    ]


def test_a_missing_input_is_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["extract", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "o.jsonl")]
    assert main([*argv, "--url", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.jsonl'} is not a file\n"


def test_nothing_at_the_url_is_status_1_and_keeps_no_row(
    rows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["classify", str(rows), "-o", str(tmp_path / "out.jsonl"), "--labels", "a"]
    assert main([*argv, "--url", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: nothing answers at http://127.0.0.1:1")
    assert err[1].startswith("stopped: 0 rows, 0 errors, 0 skipped")
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_an_output_file_of_someone_elses_is_refused_before_a_byte_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to be cut back to its last newline (a file without one to zero bytes) first."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n', encoding="utf-8")
    report = tmp_path / "report.csv"
    report.write_bytes(b"quarter,revenue\nQ1,100\nQ2,120")  # no newline at the end
    argv = ["classify", str(rows), "-o", str(report), "--labels", "a,b"]
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 2
    assert "result of this command" in capsys.readouterr().err
    assert report.read_bytes() == b"quarter,revenue\nQ1,100\nQ2,120"


@pytest.mark.parametrize(
    ("environ", "extra", "limit"),
    [
        ({}, [], 12 * 100_000 + 1024 * 1024),
        ({"SEQGPT_MAX_TEXT_CHARS": "3000"}, [], 12 * 3000 + 1024 * 1024),
        ({"SEQGPT_MAX_TEXT_CHARS": "3000"}, ["--max-row-bytes", "500"], 500),
        ({"SEQGPT_MAX_TEXT_CHARS": "none"}, ["--max-row-bytes", "500"], 500),  # never read
    ],
)
def test_the_row_limit_is_the_option_or_room_for_the_servers_longest_text(
    rows: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    extra: list[str],
    limit: int,
) -> None:
    jobs: list[BatchJob] = []

    def run_batch(job: BatchJob, *_args: Any) -> int:
        jobs.append(job)
        return 0

    monkeypatch.delenv("SEQGPT_MAX_TEXT_CHARS", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("serving.batch.job.run_batch", run_batch)
    argv = ["classify", str(rows), "-o", str(tmp_path / "out.jsonl"), "--labels", "a"]
    assert main([*argv, "--url", "http://127.0.0.1:9", *extra]) == 0
    assert [job.max_row_bytes for job in jobs] == [limit]


def test_bad_settings_stop_a_remote_run_that_needs_the_text_limit(
    rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEQGPT_MAX_TEXT_CHARS", "0")
    argv = ["classify", str(rows), "-o", str(tmp_path / "out.jsonl"), "--labels", "a"]
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("error: SEQGPT_MAX_TEXT_CHARS='0': ")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_schema_file_goes_to_the_job_and_a_bad_one_is_a_usage_error(
    rows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs: list[BatchJob] = []

    def run_batch(job: BatchJob, *_args: Any) -> int:
        jobs.append(job)
        return 0

    monkeypatch.setattr("serving.batch.job.run_batch", run_batch)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"人物": ["职位"]}), encoding="utf-8")
    argv = ["extract", str(rows), "-o", str(tmp_path / "out.jsonl"), "--url", "http://127.0.0.1:9"]
    assert main([*argv, "--schema", str(schema), "--max-row-bytes", "1000"]) == 0
    assert [(job.schema, job.labels) for job in jobs] == [({"人物": ["职位"]}, None)]
    for text, extra, message in [
        ("{", [], "not a readable JSON file"),
        ("[]", [], "non-empty JSON object"),
        ('{"a": null}', ["--labels", "a"], "--labels or --schema, not both"),
    ]:
        schema.write_text(text, encoding="utf-8")
        assert main([*argv, "--schema", str(schema), *extra]) == 2
        assert message in capsys.readouterr().err
    assert len(jobs) == 1
