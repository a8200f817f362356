"""The Markdown of item 5 (request options) and of the model and server the run used (pure)."""

from __future__ import annotations

from typing import Any

__all__ = ["options_section", "options_summary", "server_row", "tokenizer_row"]

SCORES_GOAL = 0.95  # scores may cost at most 5 % of classification's req/s
MISSING = "not measured in this run"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _lat(row: dict[str, float]) -> str:
    return f"{row['p50']:.2f} / {row['p95']:.2f}"


def _cost(ratio: float) -> str:
    """Throughput lost, as a share: none when the option was faster."""
    return f"a cost of {1 - ratio:.0%}" if ratio < 1 else "no cost (faster)"


def tokenizer_row(meta: dict[str, Any]) -> str:
    """The tokenizer line of the machine table: its size and the corpus's tokens/char, now and
    with the tokenizer test checkpoints had before."""
    facts = meta.get("tokenizer")
    if not facts:
        return f"| tokenizer | {MISSING} |"

    def rate(per_char: dict[str, float]) -> str:
        return (
            f"**{per_char['all']:.2f}** (Chinese {per_char['zh']:.2f}, "
            f"English {per_char['en']:.2f})"
        )

    now, before = facts["tokens_per_char"], facts["before"]
    return (
        f"| tokenizer | byte-level BPE of {facts['vocabulary']:,} tokens (the 560m model's is "
        "trained on the Chinese and English word lists of the `wordfreq` package; the embedding "
        "keeps SeqGPT's 250,880 rows): tokens per character of `loadtest/corpus.jsonl` "
        f"{rate(now)}; with the {before['vocabulary']:,}-token BPE test checkpoints had before "
        f"{rate(before['tokens_per_char'])} |"
    )


def server_row(plan: dict[str, Any]) -> str:
    """The server line of the machine table: compiled or eager, and the settings."""
    if plan.get("enforce_eager", True):
        how = "`seqgpt-serve serve --enforce-eager` (eager: a quick run)"
    else:
        how = "`seqgpt-serve serve`, compiled as `make serve` runs it (no `--enforce-eager`)"
    reference = ""
    if plan.get("reference_server"):
        reference = (
            "; item 5c's classification on a server of its own with "
            f"SEQGPT_MAX_NEW_TOKENS={plan['reference_max_new_tokens']}"
        )
    return (
        f"| server | {how}, VLLM_CPU_KVCACHE_SPACE=4 and VLLM_CPU_NUM_OF_RESERVED_CPU=0 as the "
        f"launcher sets them, SEQGPT_SPAN_TOKENS_PER_LABEL={plan['span_tokens_per_label']}"
        f"{reference} |"
    )


def options_summary(results: dict[str, Any]) -> list[str]:
    """Item 5's rows of the results table."""
    options = results.get("options")
    if not options:
        what = "request options (batches, scores, reference decoding, windows)"
        return [f"| 5 | {what} | {MISSING} | | |"]
    batch, scores, reference = options["batch"], options["scores"], options["reference"]
    size, ratio = batch["size"], scores["paired_ratio"]
    batched = {task: batch[task]["paired_ratio"] for task in ("classify", "extract")}
    return [
        f"| 5a | batch of {size} texts on `/v1/{{task}}/batch` ÷ the same {size} texts as single "
        f"calls sent at once (c={size}), texts/s | classify {batched['classify']:.2f}×, "
        f"extract {batched['extract']:.2f}× | none | |",
        f'| 5b | `/v1/classify` req/s with `"scores": true` ÷ without, c={scores["concurrency"]} '
        f"| {ratio:.2f}×, {_cost(ratio)} | cost ≤ {1 - SCORES_GOAL:.0%} "
        f"| {_met(ratio >= SCORES_GOAL)} |",
        '| 5c | `"decoding": "reference"` (beam 4) ÷ `"fast"`, p50 latency at c=1 '
        f"| classify {reference['classify']['paired_ratio']:.2f}×, "
        f"extract {reference['extract']['paired_ratio']:.2f}× | none | |",
        _windows_summary(options.get("windows")),
    ]


def _windows_summary(windows: dict[str, Any] | None) -> str:
    if not windows:
        what = "a long document windowed by the server ÷ its windows sent by the client"
        return f"| 5d | {what} | {MISSING} | | |"
    return (
        f"| 5d | a {windows['characters']:,}-character document on `/v1/extract` (the server "
        f"windows it: {windows['windows']} windows) ÷ the same {windows['windows']} windows as "
        f"single calls sent at once, latency | {windows['paired_ratio']:.2f}× | none | |"
    )


def _batches(results: dict[str, Any]) -> list[str]:
    batch = results["options"]["batch"]
    size = batch["size"]
    lines = [
        f"### 5a. A batch of {size} against {size} single calls",
        "",
        "| task | way | texts/s | time for all texts, s | single calls p50 / p95 s "
        "| prompt tokens per text | new tokens per text | runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in ("classify", "extract"):
        for side, name in (
            ("batch", f"one `/v1/{task}/batch`"),
            ("single", f"{size} × `/v1/{task}`"),
        ):
            row = batch[task][side]
            latency = _lat(row) if side == "single" else "–"
            lines.append(
                f"| {task} | {name} | {row['texts_per_s']:.2f} | {row['seconds']:.2f} | {latency} "
                f"| {row['prompt_tokens']:.0f} | {row['completion_tokens']:.0f} "
                f"| {row['repeats']:.0f} |"
            )
    lines += [
        "",
        f"Batch ÷ single calls, texts/s: classify **{batch['classify']['paired_ratio']:.2f}×**, "
        f"extract **{batch['extract']['paired_ratio']:.2f}×** (median over runs of the ratio "
        f"of a run's two sides). The single calls are sent all at once, {size} clients with one "
        "request each, the fastest way a client can send them; the batch is one request whose "
        "texts go to the engine together. Both sides get the same texts (one language per run, "
        "alternating, with the first text's labels for all: a batch has one label set).",
        "",
    ]
    return lines


def _scores(results: dict[str, Any]) -> list[str]:
    scores = results["options"]["scores"]
    ratio = scores["paired_ratio"]
    lines = [
        "### 5b. The cost of per-label scores",
        "",
        "| `/v1/classify` | req/s | p50 / p95 s | prompt tokens | new tokens | requests × runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side, name in (("plain", "without scores"), ("scores", '`"scores": true`')):
        row = scores[side]
        lines.append(
            f"| {name} | {row['rps']:.2f} | {_lat(row)} | {row['prompt_tokens']:.0f} "
            f"| {row['completion_tokens']:.1f} | {row['n'] / row['repeats']:.0f} × "
            f"{row['repeats']:.0f} |"
        )
    lines += [
        "",
        f"With scores ÷ without, req/s at c={scores['concurrency']}: **{ratio:.2f}×**, "
        f"{_cost(ratio)} (goal: at most {1 - SCORES_GOAL:.0%}, {_met(ratio >= SCORES_GOAL)}). "
        "Without scores the engine decodes the label under the label-set grammar; with them it "
        "reads every label's probability (one engine request per label, the prompt prefilled "
        "once and shared through the prefix cache) and decodes nothing.",
        "",
    ]
    return lines


def _reference(results: dict[str, Any]) -> list[str]:
    reference, plan = results["options"]["reference"], results["plan"]
    lines = [
        "### 5c. The latency cost of reference decoding",
        "",
        "| task | decoding | p50 / p95 s | prompt tokens | new tokens | requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in ("classify", "extract"):
        for mode, name in (("fast", "`fast` (greedy)"), ("reference", "`reference` (beam 4)")):
            row = reference[task][mode]
            lines.append(
                f"| {task} | {name} | {_lat(row)} | {row['prompt_tokens']:.0f} "
                f"| {row['completion_tokens']:.1f} | {row['n']:.0f} |"
            )
    budget = (
        f"on a server whose answer budget is {plan['reference_max_new_tokens']} tokens "
        "(SEQGPT_MAX_NEW_TOKENS), about a real label and its end"
        if plan.get("reference_server")
        else "on the main server (its full 256-token budget: a quick run)"
    )
    lines += [
        "",
        f"Reference ÷ fast, p50 latency at c=1: classify "
        f"**{reference['classify']['paired_ratio']:.2f}×**, extract "
        f"**{reference['extract']['paired_ratio']:.2f}×** (median of the per-text ratios; each "
        "text is sent in both modes back to back, which goes first alternating). Random "
        "weights never end an answer, so each side decodes to its budget: for extraction "
        "both modes get the same per-label budget; classification's reference decoding is not "
        "constrained to the label set and would run to the server's 256 tokens, so it is "
        f"measured {budget}, fast decoding on the same server. The *new tokens* column shows "
        "what each side decoded.",
        "",
    ]
    return lines


def _windows(results: dict[str, Any]) -> list[str]:
    windows = results["options"].get("windows")
    if not windows:
        return ["### 5d. A long document in windows", "", f"{MISSING.capitalize()}.", ""]
    count = windows["windows"]
    lines = [
        "### 5d. A long document: windowed by the server, or by the client",
        "",
        "| way | time for the document, s | prompt tokens | new tokens | runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for side, name in (
        ("whole", "the whole document to `/v1/extract`"),
        ("split", f"its {count} windows as {count} `/v1/extract` calls sent at once"),
    ):
        row = windows[side]
        tokens = row["prompt_tokens"] * (count if side == "split" else 1)
        new = row["completion_tokens"] * (count if side == "split" else 1)
        lines.append(
            f"| {name} | {row['seconds']:.2f} | {tokens:.0f} | {new:.0f} | {row['repeats']:.0f} |"
        )
    cache = (
        "on the server without prefix caching (item 3b's): both sides send the same prompts"
        if not windows["cache"]
        else "on the main server, prefix caching on (a quick run: the second side of a run "
        "reads the first's prompts from the cache)"
    )
    lines += [
        "",
        f"Whole ÷ windows, time for the document: **{windows['paired_ratio']:.2f}×** "
        "(median over runs; which side goes first alternates). The document: "
        f"{windows['characters']:,} characters, {windows['document_tokens']:,} tokens, the "
        "corpus's Chinese texts one per line (repeated if need be, each with a fresh tag), "
        "six labels (one prompt per window). The server cut it into "
        f"{count} overlapping windows of whole sentences; the client side sends exactly those "
        "windows' texts (read from the prompts the server echoes with `return_prompts`), all "
        "at once, and would still have to shift and merge their spans. "
        f"Measured {cache}.",
        "",
    ]
    return lines


def options_section(results: dict[str, Any], plot: str | None = None) -> list[str]:
    """Item 5's section: batches, scores, reference decoding, long documents (and its plot)."""
    if not results.get("options"):
        return []
    return [
        "## 5. Request options: batches, scores, reference decoding, long documents",
        "",
        *_batches(results),
        *_scores(results),
        *_reference(results),
        *_windows(results),
        *([f"![options]({plot})", ""] if plot else []),
    ]
