"""``seqgpt-serve status``: how a running server is doing, in one line for a person.

It asks the server's ``GET /v1/status`` (behind the key) for its health, model, device, dtype
(and CPU, on the CPU backend) and the requests running and waiting in the engine; when the
answering API process holds task prompts, more lines show them per level (interactive, batch)
and per tenant. A server
without that route (it answers 404) is asked the same with what every vLLM server has:
``/health`` (open), ``/v1/models`` (the model) and ``/metrics`` (``vllm:num_requests_running``
and ``vllm:num_requests_waiting``); its device is then reported as "unknown", its dtype not.

The exit status says it to scripts: ``EXIT_HEALTHY`` (0), ``EXIT_UNHEALTHY`` (1: the server
answers but is not healthy, or is draining before a stop), ``EXIT_DOWN`` (3: nothing answers
in time), ``EXIT_UNAUTHORIZED`` (4: the server refused the key, or wants one). 2 stays the
command line's usage error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_URL",
    "EXIT_DOWN",
    "EXIT_HEALTHY",
    "EXIT_UNAUTHORIZED",
    "EXIT_UNHEALTHY",
    "ServerStatus",
    "fetch_status",
    "gauge_sums",
    "run",
    "status_line",
]

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
EXIT_DOWN = 3
EXIT_UNAUTHORIZED = 4
_RUNNING = "vllm:num_requests_running"
_WAITING = "vllm:num_requests_waiting"


@dataclass(frozen=True)
class ServerStatus:
    """What one look at a server found (None: the server did not say)."""

    healthy: bool
    model: str | None
    device: str
    running: int | None
    waiting: int | None
    draining: bool = False
    dtype: str | None = None
    cpu: str | None = None
    problem: str = ""
    """Why it is not healthy, for people (empty when the server gave no reason)."""
    inflight: int | None = None
    max_inflight: int | None = None
    batch_waiting: int = 0
    tenants: tuple[tuple[str, int, int], ...] = ()
    """Per tenant holding prompts: its name, interactive and batch prompts in flight."""


class _Down(Exception):
    """Nothing answered: the message says what happened."""


class _Unauthorized(Exception):
    """The server answered 401."""


def _get(client: httpx.Client, path: str) -> httpx.Response:
    # httpx: only when a status is asked, so the CLI starts fast.
    import httpx

    try:
        response = client.get(path)
    except httpx.TimeoutException as exc:
        raise _Down(f"no answer within {client.timeout.read or 0:g} s") from exc
    except httpx.TransportError as exc:
        raise _Down(str(exc) or type(exc).__name__) from exc
    if response.status_code == 401:
        raise _Unauthorized
    return response


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _from_status_route(body: dict[str, Any]) -> ServerStatus | None:
    """The ``/v1/status`` answer, or None when ``body`` is not one."""
    healthy, running, waiting = body.get("healthy"), body.get("running"), body.get("waiting")
    if not isinstance(healthy, bool) or not all(isinstance(n, int) for n in (running, waiting)):
        return None
    model = body.get("model")
    return ServerStatus(
        healthy=healthy,
        model=model if isinstance(model, str) else None,
        device=str(body.get("device") or "unknown"),
        running=running,
        waiting=waiting,
        draining=body.get("draining") is True,
        dtype=_text(body.get("dtype")),
        cpu=_text(body.get("cpu")),
        inflight=_int(body.get("inflight_prompts")),
        max_inflight=_int(body.get("max_inflight_prompts")),
        batch_waiting=_int(body.get("batch_prompts_waiting")) or 0,
        tenants=_tenants(body.get("inflight_by_tenant")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tenants(value: Any) -> tuple[tuple[str, int, int], ...]:
    """The ``inflight_by_tenant`` of a status answer, by name (left out if malformed)."""
    if not isinstance(value, dict):
        return ()
    return tuple(
        (str(name), _int(levels.get("interactive")) or 0, _int(levels.get("batch")) or 0)
        for name, levels in sorted(value.items())
        if isinstance(levels, dict)
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def gauge_sums(metrics_text: str, names: tuple[str, ...]) -> dict[str, float]:
    """The sum over all label sets of each named sample in Prometheus text, for those present."""
    sums: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, brace, rest = line.partition("{")
        if brace:  # labels may hold spaces: the value follows the closing brace
            rest = rest.rpartition("}")[2]
        else:
            name, _, rest = line.partition(" ")
        if name.strip() in names:
            try:
                sums[name.strip()] = sums.get(name.strip(), 0.0) + float(rest.split()[0])
            except (ValueError, IndexError):
                continue
    return sums


def _model_name(response: httpx.Response) -> str | None:
    """The model a ``/v1/models`` answer serves: its path or hub id, else its served name."""
    body = _json_object(response) if response.status_code == 200 else None
    entries = body.get("data") if body else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    name = entries[0].get("root") or entries[0].get("id")
    return name if isinstance(name, str) else None


def _problem(path: str, response: httpx.Response) -> str:
    """``/health answered 503``, with the message of the error body when there is one."""
    body = _json_object(response)
    error = body.get("error") if body else None
    message = error.get("message") if isinstance(error, dict) else None
    said = f": {message}" if isinstance(message, str) and message else ""
    return f"{path} answered {response.status_code}{said}"


def _from_vllm_routes(client: httpx.Client) -> ServerStatus:
    """The status pieced together from vLLM's own routes (a server without ``/v1/status``)."""
    health = _get(client, "/health")
    model = _model_name(_get(client, "/v1/models"))
    metrics = _get(client, "/metrics")
    gauges = gauge_sums(metrics.text, (_RUNNING, _WAITING)) if metrics.status_code == 200 else {}
    running, waiting = gauges.get(_RUNNING), gauges.get(_WAITING)
    return ServerStatus(
        healthy=health.status_code == 200,
        model=model,
        device="unknown",
        running=None if running is None else int(running),
        waiting=None if waiting is None else int(waiting),
        problem="" if health.status_code == 200 else _problem("/health", health),
    )


def fetch_status(client: httpx.Client) -> ServerStatus:
    """Ask the server at ``client``'s base URL how it is (raises ``_Down``, ``_Unauthorized``)."""
    response = _get(client, "/v1/status")
    body = _json_object(response) if response.status_code != 404 else None
    found = _from_status_route(body) if body is not None else None
    return found if found is not None else _from_vllm_routes(client)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def status_line(url: str, status: ServerStatus) -> str:
    """One line for a person: up or not, model, device (and CPU), dtype, requests running and
    waiting; then, if the answering process holds task prompts, a line of them per level and
    one per tenant."""
    state = "draining" if status.draining else "up" if status.healthy else "unhealthy"
    device = status.device
    if device == "cpu" and status.cpu:
        device += f" ({status.cpu})"
    if status.dtype:
        device += f" in {status.dtype}"
    line = (
        f"{state}: {status.model or 'model unknown'} on {device} at {url}, "
        f"{_count(status.running)} requests running, {_count(status.waiting)} waiting"
    )
    line = f"{line} ({status.problem})" if status.problem else line
    return "\n".join([line, *_load_lines(status)])


def _load_lines(status: ServerStatus) -> list[str]:
    """The answering process's prompts in flight per tenant and level, when it holds any."""
    if not status.tenants:
        return []
    interactive = sum(t[1] for t in status.tenants)
    batch = sum(t[2] for t in status.tenants)
    of = f" of {status.max_inflight}" if status.max_inflight is not None else ""
    waiting = f"; {status.batch_waiting} batch waiting a turn" if status.batch_waiting else ""
    lines = [
        f"  in flight: {interactive + batch}{of} prompts ({interactive} interactive, "
        f"{batch} batch{waiting})"
    ]
    lines += [f"  tenant {name}: {i} interactive, {b} batch" for name, i, b in status.tenants]
    return lines


def run(
    url: str,
    api_key: str | None,
    *,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Print the status line of the server at ``url`` and return the exit status."""
    # httpx: as in _get.
    import httpx

    url = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(
        base_url=url, headers=headers, timeout=timeout, transport=transport
    ) as client:
        try:
            status = fetch_status(client)
        except _Down as exc:
            sys.stdout.write(f"down: nothing answers at {url} ({exc})\n")
            return EXIT_DOWN
        except _Unauthorized:
            what = "refused the API key" if api_key else "needs an API key"
            sys.stderr.write(
                f"error: {url} {what} (401); pass the server's key with --api-key KEY or "
                "VLLM_API_KEY\n"
            )
            return EXIT_UNAUTHORIZED
    sys.stdout.write(f"{status_line(url, status)}\n")
    return EXIT_HEALTHY if status.healthy and not status.draining else EXIT_UNHEALTHY
