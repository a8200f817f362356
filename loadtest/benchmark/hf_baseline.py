"""The ways users serve SeqGPT without us: Hugging Face ``transformers``, as SeqGPT's code does.

``official``: SeqGPT's ``inference.py`` settings, one request at a time: left padding and
truncation at 1024 tokens, ``num_beams=4``, ``do_sample=False``, ``repetition_penalty=2.0``.
``batched``: its best batched greedy form: prompts sorted by length, left-padded batches.
Both cap ``max_new_tokens`` at the budget our server uses for the same prompt.

Runs in its own process (``python -m loadtest.benchmark.hf_baseline``), so its model and threads are
gone before a server starts on the same cores. Reads JSON ``{mode: [run: [{"prompt",
"max_new_tokens"}]]}`` and writes ``{mode: [timings of each run]}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_batched", "run_official"]

OFFICIAL = {"num_beams": 4, "do_sample": False, "repetition_penalty": 2.0}
MAX_INPUT_TOKENS = 1024  # SeqGPT's tokenizer setting (truncates on the left)


def _load(model_dir: str, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    # The dtype our servers serve on this CPU (the launcher's choice): the two sides compute
    # alike, even where bf16 is not native and several times slower (``auto``: the checkpoint's).
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.eval()
    return tokenizer, model


def _generate(
    tokenizer: Any, model: Any, prompts: list[str], budget: int, **kwargs: Any
) -> tuple[int, list[int]]:
    """Generate for one batch: new tokens per prompt, and each prompt's own token count."""
    import torch

    inputs = tokenizer(
        prompts, return_tensors="pt", padding=True, truncation=True, max_length=MAX_INPUT_TOKENS
    )
    with torch.inference_mode():
        output = model.generate(
            **inputs, max_new_tokens=budget, pad_token_id=tokenizer.pad_token_id, **kwargs
        )
    new_tokens = int(output.shape[1] - inputs["input_ids"].shape[1])
    return new_tokens, [int(n) for n in inputs["attention_mask"].sum(dim=1)]


def run_official(tokenizer: Any, model: Any, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """One request at a time with SeqGPT's reference decoding; per-request latencies."""
    latencies, tokens, prompt_tokens = [], [], []
    start = time.perf_counter()
    for request in requests:
        began = time.perf_counter()
        budget = request["max_new_tokens"]
        new, sizes = _generate(tokenizer, model, [request["prompt"]], budget, **OFFICIAL)
        latencies.append(time.perf_counter() - began)
        tokens.append(new)
        prompt_tokens += sizes
    return _result(start, latencies, tokens, prompt_tokens)


def _result(
    start: float, latencies: list[float], tokens: list[int], prompt_tokens: list[int]
) -> dict[str, Any]:
    return {
        "elapsed": time.perf_counter() - start,
        "latencies": latencies,
        "tokens": tokens,
        "prompt_tokens": prompt_tokens,
    }


def run_batched(
    tokenizer: Any, model: Any, requests: list[dict[str, Any]], batch_size: int
) -> dict[str, Any]:
    """Greedy, length-sorted left-padded batches; a request's latency is its batch's end."""
    order = sorted(requests, key=lambda r: len(tokenizer(r["prompt"])["input_ids"]))
    latencies, tokens, prompt_tokens = [], [], []
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        batch = order[first : first + batch_size]
        budget = max(r["max_new_tokens"] for r in batch)
        prompts = [r["prompt"] for r in batch]
        new, sizes = _generate(tokenizer, model, prompts, budget, do_sample=False)
        latencies += [time.perf_counter() - start] * len(batch)
        tokens += [new] * len(batch)
        prompt_tokens += sizes
    return _result(start, latencies, tokens, prompt_tokens)


def main(argv: list[str] | None = None) -> None:
    """Time each mode's runs of requests from ``--requests``; write the timings to ``--out``."""
    parser = argparse.ArgumentParser(description="Hugging Face baselines for the benchmark.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=Path, required=True, help="JSON: mode -> runs.")
    parser.add_argument("--modes", nargs="+", choices=["official", "batched"], required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="auto", help="float32, bfloat16 or auto.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runs: dict[str, list[list[dict[str, Any]]]] = json.loads(args.requests.read_text("utf-8"))
    tokenizer, model = _load(args.model, args.dtype)
    # Warm-up (the server is warm too): allocator, kernels, first-call costs.
    _generate(tokenizer, model, [runs[args.modes[0]][0][0]["prompt"]], 2, do_sample=False)
    results: dict[str, list[dict[str, Any]]] = {}
    for mode in args.modes:
        results[mode] = []
        for requests in runs[mode]:
            if mode == "official":
                result = run_official(tokenizer, model, requests)
            else:
                result = run_batched(tokenizer, model, requests, args.batch_size)
            results[mode].append(result)
            print(f"  hf {mode}: {len(requests)} requests in {result['elapsed']:.1f} s", flush=True)
    args.out.write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main()
