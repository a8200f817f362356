"""A two-level schema request against the same prompts sent by a client as separate extractions.

One request at a time (c=1): the median latency of ``POST /v1/extract`` with ``schema``, and of
the client's way to the same answer: ``/v1/extract`` with the top-level fields, then one
``/v1/extract`` per found entity (up to SEQGPT_SCHEMA_MAX_ENTITIES's default, 8) whose labels
are the composed names (``张三的职位``), those concurrently. Prints one markdown row:
schema ms, separate ms, their ratio, and each way's prompt count (they should agree).

python -m loadtest.schema_benchmark                    # starts a tiny-model server (free port)
python -m loadtest.schema_benchmark --model DIR        # ... serving DIR instead
python -m loadtest.schema_benchmark --url URL          # measures a running server

``--api-key`` (default ``$LOCUST_API_KEY``) is sent as the bearer key, and the server it starts
requires it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from loadtest.server import ServerProcess, ensure_model
from serving.core.schema import compose

TEXT = "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监；李四是腾讯在深圳的产品经理。"
SCHEMA: dict[str, Any] = {"人物": ["职位", "就职于", "工作地点"], "公司": ["总部"]}
MAX_ENTITIES = 8  # the server's default SEQGPT_SCHEMA_MAX_ENTITIES


async def _schema_way(client: httpx.AsyncClient, text: str, schema: dict[str, Any]) -> int:
    """One schema request; its prompt count."""
    body = {"text": text, "schema": schema, "return_prompts": True}
    response = await client.post("/v1/extract", json=body)
    response.raise_for_status()
    return len(response.json()["prompts"])


async def _separate_way(client: httpx.AsyncClient, text: str, schema: dict[str, Any]) -> int:
    """The top level, then every entity's children concurrently; the prompt count."""
    body = {"text": text, "labels": list(schema), "return_prompts": True}
    top = await client.post("/v1/extract", json=body)
    top.raise_for_status()
    answer = top.json()
    children = []
    for field, names in schema.items():
        entities = list(dict.fromkeys(s["text"] for s in answer["fields"][field]))
        for entity in entities[:MAX_ENTITIES]:
            labels = [compose(entity, name) for name in names or []]
            if labels:
                children.append({"text": text, "labels": labels, "return_prompts": True})
    found = await asyncio.gather(*(client.post("/v1/extract", json=b) for b in children))
    prompts = len(answer["prompts"])
    for response in found:  # an entity whose composed labels the server refuses is skipped
        prompts += len(response.json()["prompts"]) if response.status_code == 200 else 0
    return prompts


async def _median(way: Any, client: httpx.AsyncClient, repeats: int) -> tuple[float, int]:
    prompts = await way(client, TEXT, SCHEMA)  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        await way(client, TEXT, SCHEMA)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), prompts


async def measure(url: str, repeats: int, api_key: str | None) -> dict[str, tuple[float, int]]:
    """Median seconds and prompt count of each way, one request (or chain) at a time."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        return {
            "schema": await _median(_schema_way, client, repeats),
            "separate": await _median(_separate_way, client, repeats),
        }


def row(results: dict[str, tuple[float, int]], repeats: int) -> str:
    """The markdown row of a measurement."""
    (schema_s, schema_p), (separate_s, separate_p) = results["schema"], results["separate"]
    return (
        f"| two-level schema ÷ separate extractions (c=1, median of {repeats}) "
        f"| {schema_s * 1000:.0f} ms ({schema_p} prompts) "
        f"| {separate_s * 1000:.0f} ms ({separate_p} prompts) | {schema_s / separate_s:.2f} |"
    )


def main(argv: list[str] | None = None) -> None:
    """Measure both ways and print the markdown table's header and row."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server; default: start one")
    parser.add_argument("--model", type=Path, help="model folder to serve (default: tiny)")
    parser.add_argument("--repeats", type=int, default=7, help="requests per way (median)")
    parser.add_argument("--port", type=int, help="Port for the started server (default: free).")
    parser.add_argument("--api-key", default=os.environ.get("LOCUST_API_KEY"), help="Bearer key.")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.url:
        results = asyncio.run(measure(args.url, args.repeats, args.api_key))
    else:
        model = args.model or ensure_model(Path(".models/tiny"), "tiny")
        with ServerProcess(model, port=args.port, api_key=args.api_key) as server:
            results = asyncio.run(measure(server.url, args.repeats, args.api_key))
    print("| measurement | schema request | separate requests | ratio |")
    print("| --- | --- | --- | --- |")
    print(row(results, args.repeats))
    if args.json:
        print(json.dumps({k: {"seconds": s, "prompts": p} for k, (s, p) in results.items()}))


if __name__ == "__main__":
    main()
