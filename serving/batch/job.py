"""Batch jobs: ``seqgpt-serve classify|extract INPUT -o OUTPUT``, every row of a file answered.

The pieces: ``serving.batch.files`` reads INPUT and appends to OUTPUT (and resumes),
``serving.batch.row_requests`` checks a row and shapes its answer as the REST API does, and a
``RowAnswerer`` answers rows: ``serving.batch.engine`` (vLLM in this process, ``--model``) or
``serving.batch.remote`` (a server, ``--url``). Here they are put together:

- ``concurrency`` workers share one pass over INPUT, so that many rows are in flight and the
  engine batches them; each result is written as soon as it is known (completion order).
- A row already in OUTPUT is skipped; a bad row is an error row and the run goes on (a row over
  ``max_row_bytes`` too, read without being held whole).
- SIGINT or SIGTERM stops the run cleanly: rows in flight are abandoned (their engine work is
  aborted) and nothing half-written is left; the next run with the same OUTPUT resumes.
- A progress bar with rate and ETA on a terminal; one summary line on stderr at the end.

Exit status: 0 when every row has a line in OUTPUT (error rows included), 1 when the run
could not go on (the server refused the key, the engine died ...), 2 for a usage or file
error, 128+N when stopped by signal N.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.batch.files import (
    BadRow,
    BatchFileError,
    Key,
    ResultWriter,
    Row,
    count_rows,
    open_output,
    read_rows,
    row_key,
)
from serving.batch.input_records import DEFAULT_MAX_ROW_BYTES
from serving.batch.row_requests import RowAnswerer, RowRequest, RunFailed, request_of

__all__ = ["BatchJob", "Progress", "Summary", "process", "run_batch"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class BatchJob:
    """What to run: the service task (classify, classify_multi, extract) over INPUT."""

    task: str
    input: Path
    output: Path
    labels: str | None = None
    concurrency: int | None = None
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
    """Rows longer than this are error rows, never read whole (``serving.batch.input_records``)."""
    schema: dict[str, Any] | None = None
    """An extraction schema sent instead of labels for every row (``--schema``)."""
    own_labels: bool = True
    """Whether a row's ``labels`` is its label set (``serving.batch.row_requests.request_of``)."""


@dataclass
class Summary:
    """What a run did, for its last line."""

    total: int
    skipped: int
    written: int = 0
    errors: int = 0
    seconds: float = 0.0
    stopped_by: int | None = None  # the signal that stopped the run

    @property
    def complete(self) -> bool:
        """Whether every row of INPUT has its line in OUTPUT."""
        return self.skipped + self.written == self.total

    def line(self, output: Path) -> str:
        """One line: rows, errors, skipped, time, rows/s (and how to resume when stopped)."""
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.written} rows, {self.errors} errors, {self.skipped} skipped (already in "
            f"{output}), {self.seconds:.1f} s, {rate:.2f} rows/s"
        )
        if self.complete:
            return f"done: {text}"
        left = self.total - self.skipped - self.written
        return f"stopped: {text}; {left} rows left: rerun the same command to resume"


class Progress:
    """A progress bar with rate and ETA on stderr, shown only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        # tqdm loads only where a bar is drawn.
        from tqdm import tqdm

        shown = sys.stderr.isatty() if enabled is None else enabled
        self._bar = tqdm(total=total, unit="row", disable=not shown, file=sys.stderr)
        self._errors = 0

    def update(self, error: bool) -> None:
        """Count one written row."""
        if error:
            self._errors += 1
            self._bar.set_postfix(errors=self._errors, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Close the bar (the summary line follows on a line of its own)."""
        self._bar.close()


async def process(
    job: BatchJob,
    rows: Iterator[Row | BadRow],
    done: set[Key],
    writer: ResultWriter,
    answerer: RowAnswerer,
    summary: Summary,
    on_row: Callable[[bool], None] = lambda _error: None,
) -> None:
    """Answer every row not in ``done`` with ``concurrency`` rows in flight, writing each."""

    async def worker() -> None:
        for row in rows:  # one iterator shared by the workers: each row is taken once
            key = row_key(row)
            if key in done:
                continue
            request = request_of(job.task, row, job.labels, job.schema, job.own_labels)
            answer = await answerer.answer(request) if isinstance(request, RowRequest) else request
            # The request id (sent as X-Request-Id) finds the row in the server's request log.
            request_id = request.request_id if isinstance(request, RowRequest) else None
            writer.write(key, {"id": row.id, "row": row.number, "request_id": request_id, **answer})
            summary.written += 1
            summary.errors += "error" in answer
            on_row("error" in answer)

    concurrency = job.concurrency or answerer.default_concurrency
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        # The run's end (the key refused, the engine dead, INPUT changed under us ...) as
        # itself; a bug as it is.
        ended = [exc for exc in failed.exceptions if isinstance(exc, RunFailed | BatchFileError)]
        if ended:
            raise ended[0] from None
        raise


async def _run(
    job: BatchJob,
    answerer_context: contextlib.AbstractAsyncContextManager[Any],
    writer: ResultWriter,
    done: set[Key],
    summary: Summary,
) -> None:
    """Start the answerer, answer the rows until done or stopped, stop the answerer."""
    async with answerer_context as answerer:
        progress = Progress(summary.total - summary.skipped)
        started = time.monotonic()
        rows = read_rows(job.input, job.max_row_bytes)
        try:
            await _until_stopped(
                process(job, rows, done, writer, answerer, summary, progress.update), summary
            )
        finally:
            summary.seconds = time.monotonic() - started
            progress.close()


async def _until_stopped(work: Coroutine[Any, Any, None], summary: Summary) -> None:
    """Run ``work`` until it ends, or until SIGINT or SIGTERM cancels it (noted in ``summary``)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)

    def stop(signum: int) -> None:
        summary.stopped_by = signum
        for sig in _STOP_SIGNALS:  # a second signal ends the process the default way
            loop.remove_signal_handler(sig)
        task.cancel()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        if summary.stopped_by is None:
            raise
    finally:
        if summary.stopped_by is None:
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)


def run_batch(
    job: BatchJob,
    answerer_context: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
    announce: Callable[[str], None] | None = None,
) -> int:
    """Run ``job`` with the answerer the context gives; return the exit status.

    ``announce`` prints a line for people (default: stderr).
    """
    announce = announce or _to_stderr
    try:
        if not job.input.is_file():
            raise BatchFileError(f"{job.input} is not a file")
        if job.output.exists() and os.path.samefile(job.input, job.output):  # links too
            raise BatchFileError("the output file must not be the input file")
        writer, done = open_output(job.output)
    except BatchFileError as exc:
        announce(f"error: {exc}")
        return 2
    summary = Summary(0, 0)
    try:
        summary.total, summary.skipped = count_rows(job.input, done, job.max_row_bytes)
        if not summary.complete:
            asyncio.run(_run(job, answerer_context(), writer, done, summary))
    except (BatchFileError, RunFailed) as exc:
        announce(f"error: {exc}")
        status = 2 if isinstance(exc, BatchFileError) else 1
    except KeyboardInterrupt:  # a second Ctrl-C, or one while the engine was starting
        status = 128 + signal.SIGINT
    else:
        status = 0 if summary.stopped_by is None else 128 + summary.stopped_by
    finally:
        writer.close()
    announce(summary.line(job.output))
    return status


def _to_stderr(line: str) -> None:
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
