"""How much the benchmark measures: request counts, concurrency levels, repeats.

``FULL`` was sized to finish items 1-4 in about 15 minutes on a 2-core machine with the
560M-shaped model (the issue's limit is 20); item 5 and compiled servers (as ``make serve``
runs them) add a few minutes, and the 32,000-token tokenizer's shorter prompts take some off.
Item 6 (two eager servers, bf16 and fp32) adds 7 minutes on an AVX2-only 2-core machine, where
bf16 is slow (measured: 421 s, 283 s of it the bf16 side), less where bf16 is native.
Item 7 runs once (no repeats): two roof measurements (~15 s each), the compiled main server's
cell and each other config on an eager server of its own, about 100 s a config on an AVX2-only
2-core machine (~65 s of start-up, ~35 s for 32 prompts of ~100 tokens at c=32; measured under
another job's load): with the four eager configs of ``FULL``, about 7-8 minutes, and 1-2 more
for ``compiled-batched-512`` (a step budget tried on a server compiled as ``make serve`` runs
it). The whole ``FULL`` run took 15 minutes on a 2-core AVX-512 machine. The sweep's other
configs (``measure_prefill.CONFIGS``) are there to be named in a plan.
``QUICK`` exercises every item's code path in seconds on the tiny model, on one eager server.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    """The benchmark's sizes. Request counts are per run; every run is repeated ``repeats``."""

    repeats: int
    overhead_levels: tuple[int, ...]
    classify_levels: tuple[int, ...]
    extract_levels: tuple[int, ...]
    min_requests: int
    requests_per_client: int
    max_requests: int
    hf_official_n: int
    hf_batched_n: int
    hf_batch_size: int
    extract_latency_n: int
    extract_throughput_concurrency: int
    extract_throughput_n: int
    prefix_off_server: bool
    # False: servers compile the model, as ``make serve`` runs them (slower to start).
    enforce_eager: bool
    # 5a: texts in one batch request, against as many single requests sent at once.
    batch_size: int
    # 5b: /v1/classify with and without scores, requests at this concurrency.
    scores_concurrency: int
    # 5c: texts sent one at a time in each decoding mode, per task.
    reference_n: int
    # 5c: classification's reference decoding runs on a server of its own whose answer budget
    # (SEQGPT_MAX_NEW_TOKENS) is this, about a real label and its end: random weights never end
    # an answer, and the server's 256 would make beam search decode a hundred times what the
    # real model does. False in quick runs: the main server's budget, one server started.
    reference_server: bool
    # 5d: tokens of the long document (several windows of the model's 2048-token context).
    document_tokens: int
    # 6: plain classification at these concurrencies (max(min_requests, c) requests a run), in
    # bf16 and in fp32, each on an eager server of its own (compiled, bf16 on a CPU without native
    # bf16 spends many minutes in vLLM's start-up warm-up). False: the main server's dtype only.
    dtype_levels: tuple[int, ...]
    dtype_servers: bool
    # 7: prefill against the matmul roof: the launcher's CPU choices, one server each (names of
    # ``measure_prefill.CONFIGS``), each sent ``prefill_requests`` plain classifications of texts
    # of at least ``prefill_text_tokens`` tokens at ``prefill_concurrency``, once (not repeated:
    # the sweep's time goes to more configs); the roof's GEMMs have ``roof_tokens`` rows.
    # The config the main server runs ("compiled", or "defaults" if eager) is measured on it.
    prefill_configs: tuple[str, ...] = ("defaults",)
    prefill_concurrency: int = 32
    prefill_requests: int = 32
    prefill_text_tokens: int = 40
    roof_tokens: int = 2048
    reference_max_new_tokens: int = 4
    span_tokens_per_label: int = 4

    def dtype_requests_at(self, concurrency: int) -> int:
        """Requests in one run of item 6: one per client, at least ``min_requests``."""
        return max(self.min_requests, concurrency)

    def requests_at(self, concurrency: int) -> int:
        """Requests in one run at ``concurrency``: enough for every client to send several."""
        wanted = max(self.min_requests, self.requests_per_client * concurrency)
        return max(concurrency, min(wanted, self.max_requests))


FULL = Plan(
    repeats=3,
    overhead_levels=(1, 8, 32),
    classify_levels=(1, 2, 4, 8, 16, 32, 64),
    extract_levels=(1, 4, 16, 64),
    min_requests=4,
    requests_per_client=2,
    max_requests=64,
    hf_official_n=6,
    hf_batched_n=16,
    hf_batch_size=8,
    extract_latency_n=4,
    extract_throughput_concurrency=8,
    extract_throughput_n=16,
    prefix_off_server=True,
    enforce_eager=False,
    batch_size=64,
    scores_concurrency=16,
    reference_n=3,
    reference_server=True,
    document_tokens=7000,
    dtype_levels=(1, 16),
    dtype_servers=True,
    prefill_configs=(
        "compiled",
        "compiled-batched-512",
        "defaults",
        "batched-512",
        "batched-8192",
        "block-128",
    ),
)

QUICK = Plan(
    repeats=1,
    overhead_levels=(1, 4),
    classify_levels=(1, 4),
    extract_levels=(1, 4),
    min_requests=2,
    requests_per_client=1,
    max_requests=4,
    hf_official_n=1,
    hf_batched_n=2,
    hf_batch_size=2,
    extract_latency_n=1,
    extract_throughput_concurrency=2,
    extract_throughput_n=2,
    prefix_off_server=False,
    enforce_eager=True,
    batch_size=4,
    scores_concurrency=2,
    reference_n=1,
    reference_server=False,
    document_tokens=4500,
    dtype_levels=(1, 2),
    dtype_servers=False,
    prefill_configs=("defaults",),
    prefill_concurrency=4,
    prefill_requests=4,
    prefill_text_tokens=48,
    roof_tokens=256,
)
