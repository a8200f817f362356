"""What operators see: task metrics on vLLM's ``/metrics``, request ids, one log line per task
request, and the opt-in audit log.

- **Metrics** (``seqgpt_*``, prometheus-client's default registry, which vLLM's ``/metrics``
  serves; created at startup, after vLLM has chosen single- or multi-process collection):
  requests by task and status, latency by task, labels and prompts per request, answers that
  named nothing of the set, ungrounded values, truncated answers, rejections by reason. Only
  counters and histograms, which vLLM's multi-process collection (``--api-server-count N > 1``)
  sums over the API processes: no gauge of ours would need a ``multiprocess_mode``. Requests,
  latency and rejections are also by ``tenant``: the tenants file's names, ``default``,
  ``metrics``, and ``-`` for a request refused before it showed a valid key.
- **Request ids.** Every task response carries ``X-Request-Id``: the client's, when it sent a
  sane one (``[A-Za-z0-9._:-]``, at most 128 characters), else a new one. The service uses it
  as the prefix of its engine request ids.
- **Request log.** One JSON line per task request on stderr (``SEQGPT_REQUEST_LOG``): time, id,
  task, tenant (its name), the API process that answered (pid), status, latency, label count,
  text length, prompts, truncation. Never the text, a label, a generation or a key.
- **Audit log.** Off unless ``SEQGPT_AUDIT_LOG`` names a file: JSONL with the text, labels,
  prompts, raw generations and result of every answered task request, rotated by size, written
  by a background thread. It holds user data, so it is private whatever the umask: each file
  (rotated ones too) is created ``0600``, a folder made for it ``0700`` (an existing folder is
  left as the operator set it). SECURITY.md says what it holds and who can read it.
"""

from __future__ import annotations

import functools
import json
import logging
import logging.handlers
import os
import queue
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.lifecycle import Drain

__all__ = [
    "AuditLog",
    "Observation",
    "Observer",
    "TaskMetrics",
    "configure_request_log",
    "record_result",
    "task_metrics",
    "tenant_label",
]

TASK_PATHS = {
    "/v1/classify": "classify",
    "/v1/extract": "extract",
    "/v1/classify/batch": "classify",
    "/v1/extract/batch": "extract",
}
REQUEST_ID_HEADER = "x-request-id"
TENANT_STATE = "seqgpt_tenant"
"""Where the gate puts the request's ``Tenant`` (``scope["state"]``)."""
NO_TENANT = "-"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REJECTIONS: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "invalid_input",
    HTTPStatus.UNAUTHORIZED: "unauthorized",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too_large",
    HTTPStatus.TOO_MANY_REQUESTS: "overloaded",
    HTTPStatus.SERVICE_UNAVAILABLE: "queue_full",
    HTTPStatus.GATEWAY_TIMEOUT: "timeout",
}
_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
request_logger = logging.getLogger("seqgpt.requests")


@dataclass(frozen=True)
class TaskMetrics:
    """The ``seqgpt_*`` Prometheus metrics."""

    requests: Counter
    duration: Histogram
    labels: Histogram
    prompts: Histogram
    unparsed: Counter
    ungrounded: Counter
    truncated: Counter
    rejections: Counter


@functools.cache
def task_metrics() -> TaskMetrics:
    """The process's metrics, registered once (at startup, never at import)."""
    task = ["task"]
    return TaskMetrics(
        requests=Counter(
            "seqgpt_requests",
            "Task requests by task, status and tenant.",
            [*task, "status", "tenant"],
        ),
        duration=Histogram(
            "seqgpt_request_duration_seconds", "Task request latency.", [*task, "tenant"]
        ),
        labels=Histogram("seqgpt_labels_per_request", "Labels per request.", task, buckets=_COUNTS),
        prompts=Histogram(
            "seqgpt_prompts_per_request", "Prompts per request.", task, buckets=_COUNTS
        ),
        unparsed=Counter("seqgpt_unparsed_answers", "Answers naming no label of the set.", task),
        ungrounded=Counter("seqgpt_ungrounded_values", "Values not found in the text.", task),
        truncated=Counter("seqgpt_truncated_answers", "Answers cut at the token budget.", task),
        rejections=Counter(
            "seqgpt_rejections", "Requests refused, by reason and tenant.", ["reason", "tenant"]
        ),
    )


@dataclass(frozen=True)
class Observation:
    """What the task routes report to: the metrics, and the audit log when it is on."""

    metrics: TaskMetrics
    audit: AuditLog | None = None


def record_result(metrics: TaskMetrics, task: str, generations: Sequence[Any], value: Any) -> None:
    """Count one answered task request: sizes, unparsed answers, ungrounded values, cuts."""
    labels = sum(len(g.labels) for g in generations if getattr(g, "window", 0) == 0)
    metrics.labels.labels(task).observe(labels)  # a long text's windows ask the same labels
    metrics.prompts.labels(task).observe(len(generations))
    if any(g.truncated for g in generations):
        metrics.truncated.labels(task).inc()
    if task == "extract":
        unparsed = sum(1 for g in generations if not g.parsed.answered)
        metrics.ungrounded.labels(task).inc(sum(map(len, value.ungrounded.values())))
    else:
        unparsed = 0 if value else 1
    if unparsed:
        metrics.unparsed.labels(task).inc(unparsed)


def tenant_label(scope: Scope) -> str:
    """The request's tenant as a label and log field: its name, ``-`` before the gate named one
    (a refused key). Bounded by the tenants file's names and the server's own two."""
    tenant = scope.get("state", {}).get(TENANT_STATE)
    return str(tenant.name) if tenant is not None else NO_TENANT


def request_id_of(headers: Headers) -> str:
    """The client's request id when it is sane, else a new one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


class Observer:
    """Outermost middleware: request ids, task metrics, rejections and the request log."""

    def __init__(self, app: ASGIApp, *, metrics: TaskMetrics, drain: Drain, log: bool) -> None:
        self.app = app
        self._metrics = metrics
        self._drain = drain
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; count and log it once its response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        task = TASK_PATHS.get(path)
        request_id = request_id_of(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = request_id
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if task is not None:
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._account(scope, task, status, time.perf_counter() - started)

    def _account(self, scope: Scope, task: str | None, status: int, elapsed: float) -> None:
        reason = _REJECTIONS.get(status) if status >= 400 else None  # 499 is no HTTPStatus
        if reason == "queue_full" and self._drain.draining:
            reason = "draining"
        tenant = tenant_label(scope)
        if reason is not None:
            self._metrics.rejections.labels(reason, tenant).inc()
        if task is None:
            return
        facts = scope["state"].get("seqgpt", {})
        task = facts.get("task", task)
        self._metrics.requests.labels(task, str(status), tenant).inc()
        self._metrics.duration.labels(task, tenant).observe(elapsed)
        if self._log:
            line = {"time": _now(), "request_id": scope["state"]["request_id"], "task": task}
            line["tenant"] = tenant
            line["pid"] = os.getpid()  # with several API processes: the one that answered
            line |= {"status": status, "latency_ms": round(elapsed * 1000, 1)}
            sizes = ("labels", "text_chars", "prompts", "windows", "truncated")
            line |= {k: facts.get(k) for k in sizes}
            if "items" in facts:
                line["items"] = facts["items"]
            request_logger.info(json.dumps(line))


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler whose files only their owner can read, whatever the umask."""

    def _open(self) -> Any:
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(descriptor, 0o600)  # a file that already existed, wider
        return os.fdopen(descriptor, "a", encoding=self.encoding, errors=self.errors)


def _private_folder(folder: Path) -> None:
    """Make ``folder`` (and missing parents) owner-only; an existing folder is left alone."""
    if folder.is_dir():
        return
    _private_folder(folder.parent)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:  # another API server process made it just now
        return
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask


class AuditLog:
    """Every answered task request as one JSON line in a size-rotated, owner-only file (opt-in)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        _private_folder(path.parent)
        handler = _PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._logger = logging.getLogger(f"seqgpt.audit.{path}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(logging.handlers.QueueHandler(records))
        # The file is written by a thread, never on the event loop.
        self._handler = handler
        self._closed = False
        self._listener = logging.handlers.QueueListener(records, handler)
        self._listener.start()

    def record(self, entry: dict[str, Any]) -> None:
        """Append one entry (a request id, the input, prompts, generations, the result)."""
        self._logger.info(json.dumps({"time": _now(), **entry}, ensure_ascii=False))

    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the file (once)."""
        if not self._closed:  # QueueListener.stop() may not be called twice
            self._closed = True
            self._listener.stop()
            self._handler.close()


def configure_request_log() -> None:
    """Request log lines go to stderr as they are (each is one JSON object)."""
    if not request_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_logger.addHandler(handler)
        request_logger.setLevel(logging.INFO)
        request_logger.propagate = False


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
