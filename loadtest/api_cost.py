"""What the API layer costs: CPU time of the API server process per request, ours against vLLM's.

    python -m loadtest.api_cost                       # tiny model, about 6 minutes
    python -m loadtest.api_cost --profile             # and py-spy's top entries per endpoint

On the tiny model the engine is cheap, so the Python of the HTTP layer shows. One server with
one API process: ``/v1/classify`` against the same prompt, budget and label constraint sent by
hand to ``/v1/completions``, alternating, each at ``--clients`` closed-loop clients; the CPU time
of the API process (``/proc/PID/stat``, user + system) divided by the requests answered, and
beside it that of the server's other processes (the launcher, the engine core and its worker:
"the engine"). Both sides send the engine the same request (``tests/api/test_engine_request.py``),
so a difference in the engine's figure is not work asked of it: its processes busy-wait on each
other (vLLM's shared-memory queues), so on a full machine their CPU follows the wall time. Then a
server with two API processes (``--api-server-count 2``): ``/v1/classify`` req/s against the
one-process server's, with the CPU each API process spent. The API processes are found by
asking ``/v1/status`` (its ``pid``) over fresh connections. ``--profile`` samples the API process
with py-spy during one more run of each endpoint and lists the functions where it was found
running (own time), ours and vLLM's alike. The report records the CPU and dtype.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from loadtest.api_cost_report import median as _median
from loadtest.api_cost_report import paired, report
from loadtest.benchmark.driver import run_cell
from loadtest.benchmark.measure import ENDPOINTS, MODEL_NAME
from loadtest.benchmark.workloads import Workloads
from loadtest.machine import machine_facts, provenance
from loadtest.server import ServerProcess, ensure_model
from loadtest.spy import py_spy

__all__ = ["RESULTS", "api_pids", "cpu_seconds", "engine_pids", "main", "summary"]

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
SIDES = ("classify", "raw")
RESULTS = ROOT / "loadtest" / "results" / "api_cost.json"
START_S = 900.0  # a busy 2-core machine took more than 4 minutes to start two API processes


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds spent so far by the processes ``pids`` (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICK


def _cpu_each(pids: set[int]) -> dict[int, float]:
    """``cpu_seconds`` of each of ``pids`` still running (a helper process may have ended)."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = cpu_seconds({pid})
    return found


def engine_pids(server: ServerProcess, api: set[int]) -> set[int]:
    """The server's processes other than its API processes: the launcher, the engine core, its
    worker and helpers."""
    return {server.pid, *server.processes()} - api


def api_pids(url: str, processes: int, tries: int = 200) -> set[int]:
    """The API server processes behind ``url``: ``/v1/status``'s ``pid`` over fresh
    connections until ``processes`` distinct ones answered."""
    found: set[int] = set()
    for _ in range(tries):
        found.add(httpx.get(f"{url}/v1/status", timeout=30).json()["pid"])
        if len(found) == processes:
            return found
    raise RuntimeError(f"found {len(found)} of {processes} API processes behind {url}")


def _measure(
    url: str, pids: tuple[set[int], set[int]], kind: str, bodies: list[Any], clients: int
) -> dict[str, float]:
    """One closed-loop run: its summary, plus CPU ms per request of the API processes (and
    the less busy one's share of the busier one's) and of the engine's (``pids``: both sets)."""
    api, engine = pids
    before = _cpu_each(api | engine)
    path, check = ENDPOINTS[kind]
    result = run_cell(url, path, bodies, clients, check)
    answered = max(result["n"] - result["errors"], 1)
    after = _cpu_each(api | engine)
    spent = {pid: after[pid] - before[pid] for pid in before.keys() & after.keys()}
    ours = [spent[pid] for pid in api]
    result["cpu_ms"] = 1000 * sum(ours) / answered
    result["cpu_share"] = min(ours) / max(max(ours), 1e-9)
    result["engine_cpu_ms"] = 1000 * sum(spent.get(pid, 0.0) for pid in engine) / answered
    return result


def _profile(pid: int, run: Callable[[], Any], out: Path) -> list[tuple[str, float]]:
    """Own-time shares of the functions py-spy found the API process ``pid`` running in while
    ``run()`` ran, largest first (idle waits in the event loop's selector left out)."""
    with py_spy(pid, out, rate=200):
        run()
    own: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rpartition(";")[2]
        if "select (selectors.py" in leaf or "_run_once (asyncio" in leaf:
            continue  # waiting, not working
        own[re.sub(r":\d+\)$", ")", leaf)] += int(count)
    total = sum(own.values()) or 1
    return [(name, n / total) for name, n in own.most_common(15)]


def _pairs(
    url: str,
    pids: tuple[set[int], set[int]],
    work: Workloads,
    take: Iterator[list[Any]],
    args: argparse.Namespace,
) -> dict[str, list[dict[str, float]]]:
    """``args.repeats`` runs of each side, alternating which goes first, on the same texts."""
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        entries = next(take)
        for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
            bodies = (
                work.classify(entries)
                if side == "classify"
                else work.raw_classify(entries, MODEL_NAME)
            )
            result = _measure(url, pids, side, bodies, args.clients)
            runs[side].append(result)
            print(
                f"  {side:<8} #{repeat + 1}: {result['rps']:6.1f} req/s, "
                f"{result['cpu_ms']:5.2f} API, {result['engine_cpu_ms']:5.2f} engine "
                "CPU ms/request",
                flush=True,
            )
    return runs


@contextlib.contextmanager
def _server(model: Path, processes: int, args: argparse.Namespace) -> Iterator[ServerProcess]:
    """A server with ``processes`` API processes, started with a generous deadline."""
    extra = ("--api-server-count", str(processes), "--served-model-name", MODEL_NAME)
    env = {"SEQGPT_MAX_INFLIGHT": "1024"}  # the bound is not what this measures
    log = args.logs / f"server-api{processes}.log"
    server = ServerProcess(model, extra_args=extra, env=env, log_path=log, dtype=args.dtype)
    server.start(timeout=START_S)
    try:
        yield server
    finally:
        server.stop()


def _warm(url: str, work: Workloads, take: Iterator[list[Any]], clients: int) -> None:
    entries = next(take)
    run_cell(url, "/v1/classify", work.classify(entries), clients, ENDPOINTS["classify"][1])
    run_cell(
        url, "/v1/completions", work.raw_classify(entries, MODEL_NAME), clients, ENDPOINTS["raw"][1]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the report (failed requests are counted in it)."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.api_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", default="tiny", choices=["tiny", "560m"])
    parser.add_argument("--model", type=Path, help="Checkpoint folder (default .models/SIZE).")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=640, help="Requests per run.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--one-process", action="store_true", help="Skip the 2-process server.")
    parser.add_argument("--report", type=Path, default=ROOT / "API_BENCHMARK.md")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="The figures as JSON, which BENCHMARKS.md's section on the API layer renders.",
    )
    parser.add_argument("--logs", type=Path, default=ROOT / "loadtest" / "reports" / "api_cost")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    model = ensure_model(args.model or ROOT / ".models" / args.size, args.size)
    work = Workloads(model, span_tokens_per_label=8)
    position = 0

    def batches() -> Iterator[list[Any]]:
        nonlocal position
        while True:
            position += args.requests
            yield work.entries(args.requests, position)

    take = batches()
    import torch

    results: dict[str, Any] = {
        "meta": machine_facts(),
        "args": {key: str(value) for key, value in vars(args).items()},
        "capability": torch.backends.cpu.get_cpu_capability(),
    }
    with _server(model, 1, args) as one:
        api = api_pids(one.url, 1)
        pids = (api, engine_pids(one, api))
        _warm(one.url, work, take, args.clients)
        results["one"] = _pairs(one.url, pids, work, take, args)
        if args.profile:
            pid = next(iter(api))
            results["profile"] = {}
            for side in SIDES:
                entries = next(take)
                bodies = (
                    work.classify(entries)
                    if side == "classify"
                    else work.raw_classify(entries, MODEL_NAME)
                )
                results["profile"][side] = _profile(
                    pid,
                    functools.partial(_measure, one.url, pids, side, bodies, args.clients),
                    args.logs / f"profile-{side}.txt",
                )
    if not args.one_process:
        with _server(model, 2, args) as two:
            api = api_pids(two.url, 2)
            pids = (api, engine_pids(two, api))
            _warm(two.url, work, take, args.clients)
            results["two"] = [
                _measure(two.url, pids, "classify", work.classify(next(take)), args.clients)
                for _ in range(args.repeats)
            ]
    text = report(results)
    args.report.write_text(text, encoding="utf-8")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary(results), indent=1), encoding="utf-8")
    print(text)
    return 0


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures BENCHMARKS.md shows: medians, ratios, the profiles' top entries, where and
    how they were measured."""
    meta, one, two = results["meta"], results["one"], results.get("two")
    ours, raw = one["classify"], one["raw"]
    command = "python -m loadtest.api_cost" + (" --profile" if "profile" in results else "")
    figures: dict[str, Any] = {
        **provenance(command, meta),
        "model": f"{results['args']['size']} in {results['args']['dtype']}",
        "clients": int(results["args"]["clients"]),
        "cpu_ms": {"classify": _median(ours, "cpu_ms"), "completions": _median(raw, "cpu_ms")},
        "ratio": paired(ours, raw, "cpu_ms"),
        "engine_cpu_ms": {
            "classify": _median(ours, "engine_cpu_ms"),
            "completions": _median(raw, "engine_cpu_ms"),
        },
        "engine_ratio": paired(ours, raw, "engine_cpu_ms"),
        "rps": {"classify": _median(ours, "rps"), "completions": _median(raw, "rps")},
        "rps_ratio": paired(ours, raw, "rps"),
        "profile": {side: top[:5] for side, top in results.get("profile", {}).items()},
    }
    if two:
        figures["processes"] = {
            "rps": [_median(ours, "rps"), _median(two, "rps")],
            "cpu_ms": [_median(ours, "cpu_ms"), _median(two, "cpu_ms")],
            "share": _median(two, "cpu_share"),
        }
    return figures


if __name__ == "__main__":
    sys.exit(main())
