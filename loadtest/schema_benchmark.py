"""A two-level schema request against the same prompts sent by a client as separate extractions.

One request at a time (c=1), both ways through the product's client (``AsyncSeqGPTClient``):
the median latency of ``extract(text, schema=...)``, and of the client's way to the same answer:
``extract`` with the top-level fields, then one ``extract`` per found entity (up to
SEQGPT_SCHEMA_MAX_ENTITIES's default, 8) whose labels are the composed names (``张三的职位``),
those concurrently. Prints one markdown row: schema ms, separate ms, their ratio, and each
way's prompt count (they should agree).

A random-weight model finds no entity, and each way would then send the top-level prompt alone.
The server it starts serves a tiny model taught this module's TEXT (``LESSONS``:
``seqgpt-serve make-test-model --teach``), which finds 张三 and 李四, 阿里巴巴 and 腾讯, and
answers each of their second-level prompts: both ways send the same 5 prompts.

python -m loadtest.schema_benchmark                    # starts a taught tiny-model server
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
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtest.machine import machine_facts, provenance
from loadtest.server import ServerProcess, seqgpt_serve
from serving.client import AsyncSeqGPTClient, SeqGPTError
from serving.core.schema import compose

TEXT = "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监；李四是腾讯在深圳的产品经理。"
SCHEMA: dict[str, Any] = {"人物": ["职位", "就职于", "工作地点"], "公司": ["总部"]}
MAX_ENTITIES = 8  # the server's default SEQGPT_SCHEMA_MAX_ENTITIES
FACTS = {"张三": ("技术总监", "阿里巴巴", "北京"), "李四": ("产品经理", "腾讯", "深圳")}
LESSONS: list[dict[str, Any]] = [
    {"text": TEXT, "fields": {"人物": list(FACTS), "公司": ["阿里巴巴", "腾讯"]}},
    *(
        {"text": TEXT, "fields": {compose(p, f): [v] for f, v in zip(SCHEMA["人物"], facts)}}  # noqa: B905
        for p, facts in FACTS.items()
    ),
    {"text": TEXT, "fields": {compose("阿里巴巴", "总部"): []}},
    {"text": TEXT, "fields": {compose("腾讯", "总部"): ["深圳"]}},
]
"""What the taught model answers: the top level, then each entity's second level."""
TAUGHT = Path(".models/tiny-taught-schema")
RESULTS = Path(__file__).resolve().parent / "results" / "schema.json"


def taught_model(directory: Path = TAUGHT) -> Path:
    """The tiny model taught ``LESSONS`` at ``directory``, made if missing (about a minute)."""
    if not (directory / "config.json").exists():
        print(f"teaching a tiny test model in {directory} ...", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            lessons = Path(folder) / "lessons.jsonl"
            lines = (json.dumps(lesson, ensure_ascii=False) + "\n" for lesson in LESSONS)
            lessons.write_text("".join(lines), encoding="utf-8")
            command = [seqgpt_serve(), "make-test-model", str(directory), "--teach", str(lessons)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return directory


async def _schema_way(client: AsyncSeqGPTClient, text: str, schema: dict[str, Any]) -> int:
    """One schema request; its prompt count."""
    answer = await client.extract(text, schema=schema, return_prompts=True)
    return len(answer.prompts or [])


async def _separate_way(client: AsyncSeqGPTClient, text: str, schema: dict[str, Any]) -> int:
    """The top level, then every entity's children concurrently; the prompt count."""
    top = await client.extract(text, list(schema), return_prompts=True)
    children = []
    for field, names in schema.items():
        entities = list(dict.fromkeys(s.text for s in top.fields[field]))
        for entity in entities[:MAX_ENTITIES]:
            labels = [compose(entity, name) for name in names or []]
            if labels:
                children.append(client.extract(text, labels, return_prompts=True))
    found = await asyncio.gather(*children, return_exceptions=True)
    prompts = len(top.prompts or [])
    for answer in found:  # an entity whose composed labels the server refuses is skipped
        if isinstance(answer, BaseException) and not isinstance(answer, SeqGPTError):
            raise answer
        prompts += 0 if isinstance(answer, BaseException) else len(answer.prompts or [])
    return prompts


async def measure(url: str, repeats: int, api_key: str | None) -> dict[str, tuple[float, int]]:
    """Median seconds and prompt count of each way, one request (or chain) at a time, the ways
    taking turns (each repeat alternating which goes first) after a warm-up of each."""
    ways = {"schema": _schema_way, "separate": _separate_way}
    async with AsyncSeqGPTClient(url, api_key=api_key, timeout=300) as client:
        prompts = {name: await way(client, TEXT, SCHEMA) for name, way in ways.items()}
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        for repeat in range(repeats):
            for name in list(ways)[:: 1 if repeat % 2 == 0 else -1]:
                started = time.perf_counter()
                await ways[name](client, TEXT, SCHEMA)
                seconds[name].append(time.perf_counter() - started)
    return {name: (statistics.median(seconds[name]), prompts[name]) for name in ways}


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
    parser.add_argument(
        "--model", type=Path, help=f"model folder to serve (default: {TAUGHT}, made if missing)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="requests per way (median)")
    parser.add_argument("--port", type=int, help="Port for the started server (default: free).")
    parser.add_argument("--api-key", default=os.environ.get("LOCUST_API_KEY"), help="Bearer key.")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="The figures as JSON, which BENCHMARKS.md renders (default: %(default)s).",
    )
    args = parser.parse_args(argv)
    before = machine_facts()
    if args.url:
        results = asyncio.run(measure(args.url, args.repeats, args.api_key))
    else:
        model = args.model or taught_model()
        with ServerProcess(model, port=args.port, api_key=args.api_key) as server:
            results = asyncio.run(measure(server.url, args.repeats, args.api_key))
    print("| measurement | schema request | separate requests | ratio |")
    print("| --- | --- | --- | --- |")
    print(row(results, args.repeats))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    figures = summary(results, args.repeats, before)
    args.results.write_text(json.dumps(figures, indent=1, ensure_ascii=False), encoding="utf-8")


def summary(
    results: dict[str, tuple[float, int]], repeats: int, meta: dict[str, Any]
) -> dict[str, Any]:
    """The figures BENCHMARKS.md shows, with where and how they were measured."""
    return {
        **provenance(f"python -m loadtest.schema_benchmark --repeats {repeats}", meta),
        "repeats": repeats,
        "ms": {name: seconds * 1000 for name, (seconds, _) in results.items()},
        "prompts": {name: prompts for name, (_, prompts) in results.items()},
        "ratio": results["schema"][0] / results["separate"][0],
    }


if __name__ == "__main__":
    main()
