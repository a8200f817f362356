"""A batch run with a fake runner: every row once, bad rows as error rows, rows in flight,
resume after a failure or a torn line, a clean stop on SIGINT, the summary line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.batch.files import BadRow, BatchFileError, Row, open_output
from serving.batch.job import BatchJob, Progress, Summary, process, run_batch
from serving.batch.row_requests import RowRequest, RunFailed


class FakeRunner:
    """Answers each row with its labels reversed; can fail or hang after some rows."""

    default_concurrency = 4

    def __init__(self, *, fail_after: int | None = None, stop_after: int | None = None) -> None:
        self.requests: list[RowRequest] = []
        self.inflight = self.most_inflight = 0
        self._fail_after = fail_after
        self._stop_after = stop_after

    async def answer(self, request: RowRequest) -> dict[str, Any]:
        self.requests.append(request)
        self.inflight += 1
        self.most_inflight = max(self.most_inflight, self.inflight)
        try:
            if self._fail_after is not None and len(self.requests) > self._fail_after:
                raise RunFailed("the server went away")
            if self._stop_after is not None and len(self.requests) > self._stop_after:
                if len(self.requests) == self._stop_after + 1:
                    os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C would, mid-run
                await asyncio.Event().wait()  # never answers: in flight when stopped
            await asyncio.sleep(0.001 * (len(self.requests) % 3))  # finish out of order
            labels = request.labels if isinstance(request.labels, list) else [request.labels]
            return {"label": labels[-1], "labels": labels[::-1], "text": request.text}
        finally:
            self.inflight -= 1


def _input(tmp_path: Path, rows: list[Any], name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def _run(
    job: BatchJob, runner: FakeRunner, lines: list[str] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    said = lines if lines is not None else []
    status = run_batch(job, lambda: contextlib.nullcontext(runner), said.append)
    output = job.output.read_text(encoding="utf-8") if job.output.exists() else ""
    assert output == "" or output.endswith("\n")
    return status, [json.loads(line) for line in output.splitlines()]


ROWS: list[Any] = [
    *({"id": f"r{i}", "text": f"text {i}"} for i in range(1, 11)),
    {"id": "own", "text": "t", "labels": ["x", "y"]},
    '{"id": "broken", "text": ',  # line 12
    {"id": "r3", "text": "again"},  # line 13: a duplicate id
    {"id": "notext"},
    {"text": "no id"},  # line 15: id 15
]


def test_every_row_is_answered_once_and_bad_rows_are_error_rows(tmp_path: Path) -> None:
    job = BatchJob("classify", _input(tmp_path, ROWS), tmp_path / "out.jsonl", "a,b")
    said: list[str] = []
    status, rows = _run(job, runner := FakeRunner(), said)
    assert status == 0
    assert sorted(row["row"] for row in rows) == list(range(1, 16))
    by_row = {row["row"]: row for row in rows}
    first = {"id": "r1", "row": 1, "request_id": "batch-r1", "label": "a,b", "labels": ["a,b"]}
    assert by_row[1] == {**first, "text": "text 1"}
    assert by_row[11]["labels"] == ["y", "x"]  # the row's own labels
    assert by_row[15]["id"] == 15
    errors = {row["row"]: row for row in rows if "error" in row}
    assert sorted(errors) == [12, 13, 14]
    assert errors[12]["id"] == 12
    assert errors[13]["id"] is None
    assert all(row["request_id"] is None for row in errors.values())  # never sent
    message = "Row 13 repeats the id 'r3' of row 3; ids must be unique."
    assert errors[13]["error"]["message"] == message
    assert errors[14]["error"]["param"] == "text"
    assert len(runner.requests) == 12  # bad rows never reach the runner
    assert said[-1].startswith("done: 15 rows, 3 errors, 0 skipped (already in ")
    assert said[-1].endswith("rows/s")


def test_a_row_over_the_size_limit_is_an_error_row_and_the_rerun_skips_it(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "x" * 200}, {"id": "b", "text": "ok"}, {"text": "y" * 200}]
    job = BatchJob("classify", _input(tmp_path, rows), tmp_path / "out.jsonl", "p", 2, 100)
    said: list[str] = []
    status, lines = _run(job, runner := FakeRunner(), said)
    assert status == 0
    assert [r.request_id for r in runner.requests] == ["batch-b"]
    errors = sorted(
        (row["row"], row["id"], row["error"]["code"]) for row in lines if "error" in row
    )
    assert errors == [(1, None, 413), (3, None, 413)]
    assert said[-1].startswith("done: 3 rows, 2 errors, 0 skipped")

    said.clear()
    assert _run(job, runner := FakeRunner(), said)[1] == lines  # nothing written twice
    assert runner.requests == []
    assert said[-1].startswith("done: 0 rows, 0 errors, 3 skipped")


@pytest.mark.parametrize(("concurrency", "expected"), [(None, 4), (2, 2), (30, 10)])
def test_rows_in_flight_up_to_the_concurrency(
    tmp_path: Path, concurrency: int | None, expected: int
) -> None:
    rows = [{"text": f"t{i}"} for i in range(10)]
    job = BatchJob("extract", _input(tmp_path, rows), tmp_path / "out.jsonl", "a", concurrency)
    _run(job, runner := FakeRunner())
    assert runner.most_inflight == expected


def test_a_failed_run_keeps_its_rows_and_the_rerun_does_the_rest(tmp_path: Path) -> None:
    job = BatchJob("classify", _input(tmp_path, ROWS), tmp_path / "out.jsonl", "a,b", 2)
    said: list[str] = []
    status, first = _run(job, FakeRunner(fail_after=4), said)
    assert status == 1
    assert said[0] == "error: the server went away"
    assert said[1].startswith(f"stopped: {len(first)} rows")
    assert said[1].endswith("rerun the same command to resume")
    assert 3 <= len(first) <= 4  # the 5th request fails; the other worker's may be in flight

    said.clear()
    status, rows = _run(job, runner := FakeRunner(), said)
    assert status == 0
    assert Counter(row["row"] for row in rows) == Counter(range(1, 16))
    assert rows[: len(first)] == first
    done = {str(row["id"]) for row in first}
    asked = {r.request_id.removeprefix("batch-") for r in runner.requests}
    assert asked
    assert not done & asked
    assert f"{len(first)} skipped" in said[-1]


def test_a_torn_last_line_is_redone_and_nothing_else(tmp_path: Path) -> None:
    rows = [{"id": i, "text": f"t{i}"} for i in range(1, 6)]
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": 1, "row": 1, "label": "a"}\n{"id": 2, "row": 2, "lab')
    job = BatchJob("classify", _input(tmp_path, rows), output, "a")
    status, lines = _run(job, runner := FakeRunner())
    assert status == 0
    assert lines[0]["id"] == 1
    assert sorted(line["id"] for line in lines) == [1, 2, 3, 4, 5]
    assert sorted(r.request_id for r in runner.requests) == [f"batch-{i}" for i in range(2, 6)]


def test_sigint_stops_cleanly_and_the_rerun_finishes(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "text": f"t{i}"} for i in range(40)]
    job = BatchJob("classify", _input(tmp_path, rows), tmp_path / "out.jsonl", "a", 4)
    said: list[str] = []
    status, first = _run(job, FakeRunner(stop_after=10), said)
    assert status == 128 + signal.SIGINT
    assert 7 <= len(first) <= 10  # those answered before the stop; in-flight rows abandoned
    assert said[-1].startswith(f"stopped: {len(first)} rows")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    status, rows = _run(job, FakeRunner())
    assert status == 0
    assert Counter(row["id"] for row in rows) == Counter(f"r{i}" for i in range(40))


def test_an_input_that_turns_unreadable_mid_run_is_a_file_error(tmp_path: Path) -> None:
    def rows() -> Iterator[Row | BadRow]:
        yield Row(1, 1, {"text": "a"})
        raise BatchFileError("in.csv is not UTF-8 text (byte 9)")

    job = BatchJob("classify", tmp_path / "in.csv", tmp_path / "out.jsonl", "a", 3)
    writer, done = open_output(job.output)
    with pytest.raises(BatchFileError, match="not UTF-8"):
        asyncio.run(process(job, rows(), done, writer, FakeRunner(), Summary(2, 0)))
    writer.close()


def test_nothing_left_to_do_starts_no_runner(tmp_path: Path) -> None:
    job = BatchJob("classify", _input(tmp_path, [{"text": "a"}]), tmp_path / "out.jsonl", "a")
    _run(job, FakeRunner())
    said: list[str] = []

    def no_runner() -> Any:
        raise AssertionError("started a runner with nothing to do")

    assert run_batch(job, no_runner, said.append) == 0
    assert said == [
        f"done: 0 rows, 0 errors, 1 skipped (already in {job.output}), 0.0 s, 0.00 rows/s"
    ]


def test_a_csv_input(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,text,labels\na,hello,\nb,world,x;y\n,third,z\n", encoding="utf-8")
    job = BatchJob("classify", path, tmp_path / "out.jsonl", "p,q")
    status, rows = _run(job, FakeRunner())
    assert status == 0
    assert {row["id"]: row["labels"] for row in rows} == {"a": ["p,q"], "b": ["x;y"], 3: ["z"]}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: BatchJob("classify", tmp / "none.jsonl", tmp / "o.jsonl"), "is not a file"),
        (lambda tmp: BatchJob("classify", tmp / "in.jsonl", tmp / "in.jsonl"), "must not be the"),
        (lambda tmp: BatchJob("classify", tmp, tmp / "o.jsonl"), "is not a file"),
    ],
)
def test_file_errors_are_one_line_and_status_2(tmp_path: Path, make: Any, message: str) -> None:
    _input(tmp_path, [{"text": "a"}])
    said: list[str] = []
    assert run_batch(make(tmp_path), lambda: contextlib.nullcontext(FakeRunner()), said.append) == 2
    assert len(said) == 1
    assert said[0].startswith("error: ")
    assert message in said[0]
    assert not (tmp_path / "o.jsonl").exists()


def test_an_output_of_something_else_is_refused_untouched(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    output.write_text("some other file\n")
    job = BatchJob("classify", _input(tmp_path, [{"text": "a"}]), output, "a")
    said: list[str] = []
    assert run_batch(job, lambda: contextlib.nullcontext(FakeRunner()), said.append) == 2
    assert "is not a result of this command" in said[0]
    assert output.read_text() == "some other file\n"


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_an_output_that_is_the_input_through_a_link_is_refused_untouched(
    tmp_path: Path, link: str
) -> None:
    source = _input(tmp_path, [{"text": "a"}])
    before = source.read_bytes()
    output = tmp_path / "out.jsonl"
    (output.hardlink_to if link == "hard" else output.symlink_to)(source)
    job = BatchJob("classify", source, output, "a")
    said: list[str] = []
    assert run_batch(job, lambda: contextlib.nullcontext(FakeRunner()), said.append) == 2
    assert said[0] == "error: the output file must not be the input file"
    assert source.read_bytes() == before


def test_the_progress_bar_stays_off_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = BatchJob("classify", _input(tmp_path, [{"text": "a"}]), tmp_path / "out.jsonl", "a")
    assert run_batch(job, lambda: contextlib.nullcontext(FakeRunner())) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("done: 1 rows, 0 errors, 0 skipped")


def test_the_progress_bar_shows_rate_eta_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(4, enabled=True)
    progress.update(error=False)
    progress.update(error=True)
    progress.close()
    bar = capsys.readouterr().err
    assert "2/4" in bar
    assert "row/s" in bar
    assert "<" in bar  # elapsed<remaining
    assert "errors=1" in bar


def test_the_summary_line() -> None:
    summary = Summary(total=10, skipped=2, written=8, errors=1, seconds=4.0)
    assert summary.line(Path("o.jsonl")) == (
        "done: 8 rows, 1 errors, 2 skipped (already in o.jsonl), 4.0 s, 2.00 rows/s"
    )
    summary.written = 5
    assert summary.line(Path("o.jsonl")).endswith("; 3 rows left: rerun the same command to resume")
