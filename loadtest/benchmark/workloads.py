"""Request bodies for the benchmark, built from the corpus.

Every text gets a unique ``#00042`` tag in front, so no prompt ever repeats in a run: vLLM's
prefix cache can then only share what one request shares with itself (the text in front of
each extraction chunk), never an earlier request's work. Both sides of a comparison get the
same corpus texts in the same order. Token budgets come from the service's own
``SeqGPTService.sampling_params``, so the raw-completions and Hugging Face sides decode exactly
as many tokens as our endpoints may.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtest.corpus import Entry, load_corpus
from prompts import build_classify_prompt

__all__ = ["LABELS_13", "Workloads"]

# Realistic wide extraction schemas; their first six labels make the 6-label variant.
LABELS_13 = {
    "zh": ["人物", "组织机构", "地点", "时间", "日期", "金额", "数量", "产品", "事件", "职位",
           "法规", "联系方式", "网址"],
    "en": ["person", "organization", "location", "date", "time", "amount", "quantity",
           "product", "event", "job title", "law", "contact", "website"],
}  # fmt: skip


class Workloads:
    """Makes request bodies with unique tags; budgets sized by the service's own rules."""

    def __init__(self, model_dir: Path, span_tokens_per_label: int, seed: int = 0) -> None:
        from transformers import AutoTokenizer

        from serving.core.service import SeqGPTService
        from serving.core.settings import Settings
        from serving.core.tasks import TASKS

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self._tokenizer = tokenizer
        settings = Settings(span_tokens_per_label=span_tokens_per_label)
        # Only its budget rules are used: no engine, no limits.
        self._service = SeqGPTService(None, tokenizer, settings, max_model_len=0, max_inflight=0)
        self._classify = TASKS["classify"]
        self._tags = itertools.count(1)
        self._entries = list(load_corpus())
        random.Random(seed).shuffle(self._entries)

    def entries(self, n: int, start: int = 0, language: str | None = None) -> list[Entry]:
        """``n`` corpus entries from position ``start`` of the shuffled corpus (or of its
        entries in ``language``), cycling."""
        pool = [e for e in self._entries if language in (None, e.language)]
        return list(itertools.islice(itertools.cycle(pool), start, start + n))

    def texts(self, entries: Sequence[Entry]) -> list[str]:
        """The entries' texts, each with a fresh tag."""
        return [self._tagged(e.text) for e in entries]

    def tokens_per_char(self, tokenizer: Any = None) -> dict[str, float]:
        """Tokens per character of the corpus texts with ``tokenizer`` (default: the model's,
        as the server counts them), per language and over all."""
        tokenizer = tokenizer or self._tokenizer
        counts: dict[str, list[int]] = {}
        for entry in self._entries:
            tokens = len(tokenizer.encode(entry.text, add_special_tokens=False))
            for key in (entry.language, "all"):
                total = counts.setdefault(key, [0, 0])
                total[0] += tokens
                total[1] += len(entry.text)
        return {key: tokens / chars for key, (tokens, chars) in sorted(counts.items())}

    @property
    def vocabulary(self) -> int:
        """Tokens in the model's tokenizer (its embedding may have more rows)."""
        return len(self._tokenizer)

    def _tagged(self, text: str) -> str:
        return f"#{next(self._tags):05d} {text}"

    def budget(self, labels: Sequence[str]) -> int:
        """The max_tokens our service gives a single-label classification over ``labels``."""
        params = self._service.sampling_params(self._classify, labels)
        return int(params.max_tokens or 0)

    def tokens(self, text: str) -> int:
        """Tokens of ``text`` with the model's tokenizer (no special tokens)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def classify_tokens(self, entry: Entry) -> int:
        """Tokens in ``entry``'s classification prompt."""
        prompt = build_classify_prompt(entry.text, entry.classify_labels)
        return len(self._tokenizer.encode(prompt, add_special_tokens=False))

    def classify(self, entries: Sequence[Entry]) -> list[dict[str, Any]]:
        """``/v1/classify`` bodies."""
        return [{"text": self._tagged(e.text), "labels": list(e.classify_labels)} for e in entries]

    def raw_classify(self, entries: Sequence[Entry], model: str) -> list[dict[str, Any]]:
        """The same classifications by hand: ``/v1/completions`` with the same prompt, budget
        and label constraint (greedy)."""
        return [
            {
                "model": model,
                "prompt": build_classify_prompt(body["text"], body["labels"]),
                "max_tokens": self.budget(body["labels"]),
                "temperature": 0.0,
                "structured_outputs": {"choice": body["labels"]},
            }
            for body in self.classify(entries)
        ]

    def hf(self, entries: Sequence[Entry]) -> list[dict[str, Any]]:
        """Prompts and token budgets for the Hugging Face baselines."""
        return [
            {
                "prompt": build_classify_prompt(body["text"], body["labels"]),
                "max_new_tokens": self.budget(body["labels"]),
            }
            for body in self.classify(entries)
        ]

    def extract(self, entries: Sequence[Entry], width: int | None = None) -> list[dict[str, Any]]:
        """``/v1/extract`` bodies: each entry's own labels, or the first ``width`` of the wide
        schema in its language."""
        return [
            {
                "text": self._tagged(e.text),
                "labels": list(e.extract_labels)
                if width is None
                else LABELS_13[e.language][:width],
            }
            for e in entries
        ]
