"""Start-up time and one request's latency (classify, 13-label extract), one request at a time.

python -m loadtest.latency                # starts a tiny-model server itself (free port)
python -m loadtest.latency --port 8123    # ... on this port
python -m loadtest.latency --url URL      # measures a running server (no start-up time)

``--api-key`` (default ``$LOCUST_API_KEY``, as for ``loadtest.run``) is sent as the bearer key,
and the server it starts requires it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import httpx

from loadtest.server import ServerProcess, ensure_model

TEXT = "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监，负责云计算产品线。"
FIELDS_13 = [
    "人物",
    "地点",
    "组织机构",
    "时间",
    "职位",
    "事件",
    "金额",
    "产品",
    "国家",
    "城市",
    "学校",
    "专业",
    "电话",
]
REQUESTS = {
    "classify, 4 labels": ("/v1/classify", ["财经", "体育", "娱乐", "科技"]),
    "extract, 13 labels (3 chunks)": ("/v1/extract", FIELDS_13),
}


def measure(url: str, repeats: int = 7, api_key: str | None = None) -> dict[str, float]:
    """Median seconds per request for each entry of ``REQUESTS``, after one warm-up each."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    medians: dict[str, float] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        for name, (path, labels) in REQUESTS.items():
            client.post(path, json={"text": TEXT, "labels": labels}).raise_for_status()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                client.post(path, json={"text": TEXT, "labels": labels}).raise_for_status()
                seconds.append(time.perf_counter() - start)
            medians[name] = statistics.median(seconds)
    return medians


def main(argv: list[str] | None = None) -> None:
    """Print start-up time (when it starts the server) and median request latencies."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running server; default: start a tiny-model server")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--api-key", default=os.environ.get("LOCUST_API_KEY"), help="Bearer key.")
    parser.add_argument("--port", type=int, help="Port for the started server (default: free).")
    args = parser.parse_args(argv)
    if args.url:
        results = measure(args.url, args.repeats, args.api_key)
    else:
        model = ensure_model(Path(".models/tiny"), "tiny")
        started = time.perf_counter()
        with ServerProcess(model, port=args.port, api_key=args.api_key) as server:
            print(f"start-up to /health 200: {time.perf_counter() - started:.1f} s")
            results = measure(server.url, args.repeats, args.api_key)
    for name, seconds in results.items():
        print(f"{name}: median {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
