"""The benchmark's item 5d: a long document windowed by the server against the same windows sent
by the client.

The document is the corpus's Chinese texts, each with a fresh tag, one per line, repeated until
it has ``plan.document_tokens`` tokens: several windows. One unmeasured request of it with
``return_prompts`` warms the windowed path and tells its windows (the text of each window's
prompt). Then, per run and in alternating order, the whole document goes to ``/v1/extract``
(the server windows it, runs the windows concurrently and merges their spans) and the same
windows go to ``/v1/extract`` as separate requests, all at once. Both sides send the same
prompts, so they run where prefix caching is off (the server of item 3b), else the second side
would read the first's prompts from the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import median
from typing import Any

import httpx

from loadtest.benchmark.driver import median_of, run_cell
from loadtest.benchmark.measure import Bench
from loadtest.benchmark.workloads import LABELS_13
from loadtest.checks import CheckError, check_extract
from prompts import build_extract_prompts

__all__ = ["measure_windows"]

LANGUAGE = "zh"
LABELS = LABELS_13[LANGUAGE][:6]  # one prompt per window
PATH = "/v1/extract"


def _document(bench: Bench) -> str:
    """Corpus texts of one language, tagged, one per line, until the document is long enough."""
    lines: list[str] = []
    tokens = 0
    while tokens < bench.plan.document_tokens:
        for text in bench.work.texts(bench.take_language(8, LANGUAGE)):
            lines.append(text)
            tokens += bench.work.tokens(text) + 1
    return "\n".join(lines)


def _window_texts(body: Mapping[str, Any]) -> list[str]:
    """The text of each window, from the prompts the server echoed (one prompt per window)."""
    texts = []
    for prompt in body["prompts"]:
        text = prompt[len("输入: ") : prompt.rindex("\n抽取: ")]
        if build_extract_prompts(text, LABELS) != [prompt]:  # the exact prompt, or not ours
            raise RuntimeError("a window's prompt is not SeqGPT's prompt for its text")
        texts.append(text)
    return texts


def _probe(bench: Bench, url: str, document: str) -> list[str]:
    body = {"text": document, "labels": LABELS, "return_prompts": True}
    response = httpx.post(f"{url}{PATH}", json=body, timeout=900)
    response.raise_for_status()
    answer = response.json()
    check_extract(body, answer)
    windows = _window_texts(answer)
    if answer["windows"] != len(windows):
        raise RuntimeError(f"{answer['windows']} windows but {len(windows)} prompts")
    bench.log(f"5d. document of {len(document):,} characters: {len(windows)} windows")
    return windows


def _check_whole(windows: int) -> Any:
    def check(request: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        check_extract(request, body)
        if body.get("windows") != windows:
            raise CheckError("the document was not sent in the same windows")

    return check


def measure_windows(bench: Bench, url: str, *, cache: bool) -> dict[str, Any]:
    """5d: the whole document's latency (``whole``) against its windows' sent by the client all
    at once (``split``), per run; the ratio is the median of the runs' ratios."""
    document = _document(bench)
    windows = _probe(bench, url, document)
    whole_body = {"text": document, "labels": LABELS}
    window_bodies = [{"text": text, "labels": LABELS} for text in windows]
    runs: dict[str, list[dict[str, float]]] = {"whole": [], "split": []}
    for repeat in range(bench.plan.repeats):
        sides = ("whole", "split") if repeat % 2 == 0 else ("split", "whole")
        for side in sides:
            if side == "whole":
                cell = run_cell(url, PATH, [whole_body], 1, _check_whole(len(windows)))
                cell["seconds"] = cell["p50"]
            else:
                cell = run_cell(url, PATH, window_bodies, len(windows), check_extract)
                cell["seconds"] = len(windows) / cell["rps"] if cell["rps"] else float("nan")
            bench.log(f"5d. {side:<7} #{repeat + 1}: {cell['seconds']:6.2f} s")
            runs[side].append(cell)
    pairs = zip(runs["whole"], runs["split"], strict=True)
    result: dict[str, Any] = {side: median_of(cells) for side, cells in runs.items()}
    result["paired_ratio"] = median(w["seconds"] / c["seconds"] for w, c in pairs)
    result |= {"windows": len(windows), "characters": len(document), "cache": cache}
    result["document_tokens"] = bench.work.tokens(document)
    return result
