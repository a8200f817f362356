"""Many teams on one server (BENCHMARKS.md §11): interactive before batch, fair shares, refusals.

One server (compiled, as ``make serve`` runs it) with a tenants file of its own, measured side by
side in one run:

- **interactive under batch work**: a 6-label ``/v1/classify`` of the tenant ``search``, one at a
  time with a pause of ``PROBE_GAP_S`` between (so the probes take a small part of the machine),
  on the idle server, then while the batch CLI (``seqgpt-serve classify --url``, its default
  concurrency) works through a 20,000-row file as the tenant ``data`` (its default priority,
  batch; and once at ``--priority interactive``, the server as it was before priorities), then
  while two clients post ``/v1/classify/batch`` of 64 texts in a loop. The batch side's rows/s
  over the probes' window is counted by the server (``seqgpt_requests_total{tenant="data"}``)
  against the same work alone;
- **fair shares**: tenants ``a`` and ``b`` each run more closed-loop clients than the server's
  in-flight bound (``SHARE_OVERLOAD`` times it: both are refused, 429, and retry after its
  ``Retry-After``), with weights 1:1, then 3:1 (the file rewritten: the server reloads it); each
  tenant's part of the requests answered in a window after the bound has filled;
- **refusals**: ``REFUSED_CLIENTS`` clients of the tenant ``limited`` (60 requests a minute), in
  ``REFUSED_PROCESSES`` processes of their own, each send a request a second; the 429's median
  latency, and meanwhile ``search``'s latency against its baseline.

    python -m loadtest.tenants_benchmark                    # 560M shape, about 15 minutes
    python -m loadtest.tenants_benchmark --size tiny --quick

The figures go to ``loadtest/results/tenants.json``, which BENCHMARKS.md renders (§11).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from loadtest.machine import machine_facts, provenance
from loadtest.server import ServerProcess, ensure_model, seqgpt_serve
from serving.core.tenants import key_digest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "loadtest" / "results" / "tenants.json"
LABELS = ["体育", "财经", "娱乐", "科技", "政治", "教育"]
TEXT = "北京时间昨晚，中国女排以3比1战胜巴西队，晋级世界杯决赛。主教练赛后表示，球队顶住了压力。"
PROBE_GAP_S = 1.0
BATCH_ROWS = 20_000
BATCH_ITEMS = 64
SHARE_OVERLOAD = 1.5
REFUSED_CLIENTS = 400
REFUSED_PROCESSES = 4
LIMITED_RPM = 60
TENANTS = ("search", "data", "a", "b", "limited")


@dataclass(frozen=True)
class Sizes:
    """How long each window runs and how many probes it takes."""

    window_s: float
    warm_s: float
    probes: int


FULL = Sizes(window_s=60.0, warm_s=30.0, probes=25)
QUICK = Sizes(window_s=6.0, warm_s=3.0, probes=3)


class Tenants:
    """The benchmark's tenants file and keys; ``weights`` rewrites ``a`` and ``b``'s weights."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "tenants.toml"
        self.keys = {name: secrets.token_urlsafe(24) for name in TENANTS}
        self.admin = secrets.token_urlsafe(24)
        self.write(a=1, b=1)

    def write(self, a: float, b: float) -> None:
        """The file with ``a`` and ``b`` at these weights (written whole, then renamed)."""
        extra = {"a": f"weight = {a}", "b": f"weight = {b}"}
        extra["limited"] = f"requests_per_minute = {LIMITED_RPM}"
        blocks = [
            f'[tenants.{name}]\nkey_sha256 = "{key_digest(key)}"\nscopes = ["tasks"]\n'
            + extra.get(name, "")
            for name, key in self.keys.items()
        ]
        partial = self.path.with_suffix(".partial")
        partial.write_text("\n".join(blocks) + "\n", encoding="utf-8")
        partial.replace(self.path)

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def _classify(http: httpx.Client) -> tuple[float, int]:
    """One classification's latency until it is answered, a 429 sent again after its
    ``Retry-After`` as a client does (the wait counts), and the 429s it got."""
    started, refused = time.perf_counter(), 0
    while True:
        response = http.post("/v1/classify", json={"text": TEXT, "labels": LABELS})
        if response.status_code != 429:
            response.raise_for_status()
            return time.perf_counter() - started, refused
        refused += 1
        time.sleep(float(response.headers.get("retry-after", "1")))


def probe(url: str, headers: dict[str, str], count: int, gap_s: float) -> dict[str, float]:
    """``count`` classifications one at a time, ``gap_s`` apart: their p50 and p95 (ms), and
    the 429s they got."""
    with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        answers = []
        for _ in range(count):
            answers.append(_classify(http))
            time.sleep(gap_s)
    latencies = [latency for latency, _ in answers]
    return {
        "p50_ms": float(np.percentile(latencies, 50)) * 1000,
        "p95_ms": float(np.percentile(latencies, 95)) * 1000,
        "refused": sum(refused for _, refused in answers),
    }


def answered(url: str, admin: str, tenant: str) -> float:
    """Task requests the server answered 200 for ``tenant`` (``seqgpt_requests``)."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {admin}"}).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "seqgpt_requests":
            continue
        for sample in family.samples:
            labels = sample.labels
            if sample.name.endswith("_total") and labels.get("tenant") == tenant:
                total += sample.value if labels.get("status") == "200" else 0.0
    return total


@contextmanager
def batch_cli(url: str, key_file: Path, folder: Path, priority: str) -> Iterator[None]:
    """The batch CLI working through ``BATCH_ROWS`` rows as the tenant ``data``."""
    rows = folder / "rows.jsonl"
    if not rows.exists():
        lines = (
            json.dumps({"text": f"#{i:05d} {TEXT}"}, ensure_ascii=False) for i in range(BATCH_ROWS)
        )
        rows.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = folder / f"out-{priority}.jsonl"
    output.unlink(missing_ok=True)
    command = [seqgpt_serve(), "classify", str(rows), "-o", str(output), "--url", url]
    command += ["--labels", ",".join(LABELS), "--api-key-file", str(key_file)]
    command += ["--priority", priority]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as cli:
        try:
            yield
        finally:
            cli.terminate()
            cli.wait(60)


@contextmanager
def batch_posters(url: str, headers: dict[str, str], clients: int = 2) -> Iterator[list[int]]:
    """``clients`` threads posting ``/v1/classify/batch`` of ``BATCH_ITEMS`` texts in a loop;
    yields the count of texts answered so far (one cell, updated)."""
    stop, done = threading.Event(), [0]
    body = {"texts": [f"#{i} {TEXT}" for i in range(BATCH_ITEMS)], "labels": LABELS}

    def post() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
            while not stop.is_set():
                if http.post("/v1/classify/batch", json=body).status_code == 200:
                    done[0] += BATCH_ITEMS

    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield done
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def under_batch(url: str, tenants: Tenants, sizes: Sizes, load: Any, rate: Any) -> dict[str, float]:
    """The batch side's rate alone over a window, then the probes' latency with the rate over
    the probes' window; ``load`` is the batch work's context, ``rate()`` its answered count."""
    with load as counter:
        time.sleep(sizes.warm_s)
        before, started = rate(counter), time.monotonic()
        time.sleep(sizes.window_s)
        alone = (rate(counter) - before) / (time.monotonic() - started)
        before, started = rate(counter), time.monotonic()
        latency = probe(url, tenants.headers("search"), sizes.probes, PROBE_GAP_S)
        busy = (rate(counter) - before) / (time.monotonic() - started)
    return {**latency, "rows_per_s_alone": alone, "rows_per_s": busy, "kept": busy / alone}


async def _closed_loop(
    url: str, headers: dict[str, str], clients: int, start: float, end: float
) -> int:
    """``clients`` clients sending classifications back to back until ``end`` (a 429 waits its
    ``Retry-After``); the answers that arrived between ``start`` and ``end``."""
    done = 0
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as http:

        async def client() -> None:
            nonlocal done
            while time.monotonic() < end:
                try:
                    response = await http.post(
                        "/v1/classify",
                        json={"text": TEXT, "labels": LABELS},
                        timeout=end - time.monotonic(),
                    )
                except httpx.TimeoutException:
                    return
                except httpx.TransportError:  # a refusal with a body closes its connection
                    continue
                if response.status_code == 200 and start <= time.monotonic() <= end:
                    done += 1
                elif response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        await asyncio.gather(*(client() for _ in range(clients)))
    return done


def shares(
    url: str, tenants: Tenants, sizes: Sizes, weights: tuple[float, float], bound: int
) -> dict[str, Any]:
    """Tenants ``a`` and ``b`` each with more clients than the in-flight bound: each one's part
    of the answers in the window after ``warm_s``."""
    tenants.write(*weights)
    time.sleep(6.0)  # the server re-reads a changed file within 5 s
    clients = max(2, int(SHARE_OVERLOAD * bound))
    start = time.monotonic() + sizes.warm_s
    end = start + sizes.window_s

    def run(name: str, out: list[int]) -> None:
        out.append(asyncio.run(_closed_loop(url, tenants.headers(name), clients, start, end)))

    counts: dict[str, list[int]] = {"a": [], "b": []}
    threads = [threading.Thread(target=run, args=(n, counts[n])) for n in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = counts["a"][0], counts["b"][0]
    return {
        "weights": list(weights),
        "clients": clients,
        "a": a,
        "b": b,
        "a_part": a / max(1, a + b),
    }


def _refused(url: str, key: str, clients: int, window_s: float, out: Any) -> None:
    """``clients`` clients of an over-limit tenant, each sending a request a second."""

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.monotonic() + window_s
        headers = {"Authorization": f"Bearer {key}"}
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=60
        ) as http:

            async def client() -> None:
                while time.monotonic() < deadline:
                    began = time.monotonic()
                    response = await http.post(
                        "/v1/classify", json={"text": TEXT, "labels": LABELS}
                    )
                    if response.status_code == 429:
                        latencies.append(time.monotonic() - began)
                    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

            await asyncio.gather(*(client() for _ in range(clients)))
        return latencies

    out.put(asyncio.run(run()))


def refusals(url: str, tenants: Tenants, sizes: Sizes) -> dict[str, float]:
    """The over-limit tenant's 429 latency, and ``search``'s latency meanwhile ÷ before."""
    baseline = probe(url, tenants.headers("search"), sizes.probes, PROBE_GAP_S)
    spawn = multiprocessing.get_context("spawn")
    results: Any = spawn.Queue()
    each = REFUSED_CLIENTS // REFUSED_PROCESSES
    args = (url, tenants.keys["limited"], each, sizes.window_s + sizes.warm_s, results)
    floods = [spawn.Process(target=_refused, args=args) for _ in range(REFUSED_PROCESSES)]
    for flood in floods:
        flood.start()
    time.sleep(sizes.warm_s)
    busy = probe(url, tenants.headers("search"), sizes.probes, PROBE_GAP_S)
    latencies = [latency for _ in floods for latency in results.get()]
    for flood in floods:
        flood.join()
    return {
        "refused": len(latencies),
        "refusal_p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "search_p50_ms": busy["p50_ms"],
        "search_ratio": busy["p50_ms"] / baseline["p50_ms"],
    }


def main(argv: list[str] | None = None) -> None:
    """Measure on one server of its own and write the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=["tiny", "560m"], default="560m")
    parser.add_argument("--model", type=Path, help="Checkpoint folder (default .models/SIZE).")
    parser.add_argument("--quick", action="store_true", help="Short windows, eager (tests).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="Server settings to try, e.g. SEQGPT_MAX_BATCH_PROMPTS=8 (recorded with the figures).",
    )
    args = parser.parse_args(argv)
    before = machine_facts()
    sizes = QUICK if args.quick else FULL
    model = ensure_model(args.model or ROOT / ".models" / args.size, args.size)
    folder = Path(tempfile.mkdtemp(prefix="seqgpt-tenants-"))
    tenants = Tenants(folder)
    key_file = folder / "data.key"
    key_file.write_text(tenants.keys["data"] + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    env = {"SEQGPT_TENANTS_FILE": str(tenants.path)}
    if args.quick:  # a smaller bound, still above the batch CLI's 64 rows in flight, so that
        # fewer clients fill it (the full run keeps the product's)
        env["SEQGPT_MAX_INFLIGHT"] = "96"
    settings = dict(item.split("=", 1) for item in args.env)
    env |= settings
    log = folder / "server.log"
    figures: dict[str, Any] = {}
    with ServerProcess(
        model, api_key=tenants.admin, env=env, log_path=log, enforce_eager=args.quick
    ) as server:
        url = server.url
        admin = {"Authorization": f"Bearer {tenants.admin}"}
        status = httpx.get(f"{url}/v1/status", headers=admin).json()
        dtype, bound = status["dtype"], status["max_inflight_prompts"]
        _classify(httpx.Client(base_url=url, headers=tenants.headers("search"), timeout=600))
        figures["idle"] = probe(url, tenants.headers("search"), sizes.probes, PROBE_GAP_S)
        print("idle", figures["idle"], flush=True)

        def rows(_: Any) -> float:
            return answered(url, tenants.admin, "data")

        for priority in ("batch", "interactive"):
            load = batch_cli(url, key_file, folder, priority)
            figures[f"cli_{priority}"] = under_batch(url, tenants, sizes, load, rows)
            print(f"cli {priority}", figures[f"cli_{priority}"], flush=True)
        posters = batch_posters(url, tenants.headers("data"))
        figures["batch_route"] = under_batch(url, tenants, sizes, posters, lambda done: done[0])
        print("batch route", figures["batch_route"], flush=True)
        figures["shares"] = [shares(url, tenants, sizes, w, bound) for w in ((1, 1), (3, 1))]
        print("shares", figures["shares"], flush=True)
        figures["refusals"] = refusals(url, tenants, sizes)
        print("refusals", figures["refusals"], flush=True)
    command = f"python -m loadtest.tenants_benchmark --size {args.size}" + " --quick" * args.quick
    command += "".join(f" --env {item}" for item in args.env)
    report = {
        **provenance(command, before),
        "model": f"{args.size} in {dtype}",
        "settings": settings,
        "sizes": dataclasses.asdict(sizes),
        "probe_gap_s": PROBE_GAP_S,
        "bound": bound,
        "refused_clients": REFUSED_CLIENTS,
        "limited_rpm": LIMITED_RPM,
        **figures,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
