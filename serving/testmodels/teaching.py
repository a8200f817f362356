"""Taught test checkpoints: a tiny model fine-tuned until it answers given extractions exactly.

A random-weight model finds no entity, so whatever depends on found entities (a schema's second
level) sends nothing on it. ``teach_model`` gives a test checkpoint known answers. Each lesson is
a text and the fields to extract with their spans,
``{"text": ..., "fields": {"人物": ["张三", "李四"], "公司": []}}``; its prompt is the product's
own (``prompts.build_extract_prompts``, one chunk: at most 6 fields), its answer SeqGPT's output
format (one ``label: span`` line per field in order, spans separated by a tab, ``None`` for none)
and then the EOS token, so that generation stops. The weights are drawn again with BLOOM's usual
initializer range (the random model's large one makes attention too sharp to learn through) and
trained with Adam on all lessons at once until the loss is small; the checkpoint is written only
once greedy decoding, in the checkpoint's own dtype, reproduces every answer token for token
(``TeachingError`` otherwise). About a hundred steps on the tiny shape: a minute on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prompts import build_extract_prompts

__all__ = ["TeachingError", "answer_text", "read_lessons", "teach_model"]

_STEPS = 600
_LEARNING_RATE = 3e-3
_TARGET_LOSS = 0.005  # mean cross-entropy per answer token at which greedy decoding is checked
_INITIALIZER_RANGE = 0.02
_TAB = "\t"  # between spans of one field


class TeachingError(ValueError):
    """A lesson file is malformed, or training did not make the model reproduce the answers."""


def answer_text(fields: Mapping[str, Sequence[str]]) -> str:
    """SeqGPT's extraction output: a ``label: span`` line per field, spans tab-separated."""
    lines = (f"{label}: {_TAB.join(spans) or 'None'}" for label, spans in fields.items())
    return "\n".join(lines)


def read_lessons(path: Path) -> list[tuple[str, str]]:
    """The (prompt, answer) pairs of a JSONL lesson file, prompts built by the product."""
    lessons = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, fields = row["text"], row["fields"]
            (prompt,) = build_extract_prompts(text, list(fields))
            lessons.append((prompt, answer_text({k: list(v) for k, v in fields.items()})))
        except (ValueError, KeyError, TypeError) as exc:
            raise TeachingError(
                f"{path} line {number}: not a lesson {{'text': ..., 'fields': {{field: [span, "
                f"...]}}}} with 1 to 6 fields ({exc})"
            ) from exc
    if not lessons:
        raise TeachingError(f"{path} holds no lesson")
    return lessons


def teach_model(directory: Path, lessons: Sequence[tuple[str, str]], seed: int = 0) -> int:
    """Retrain the checkpoint in ``directory`` on ``lessons`` and save it in place; the steps
    taken. ``TeachingError`` when greedy decoding does not then reproduce every answer."""
    # torch, transformers: seconds to import, only for a lesson taught.
    import torch
    from transformers import AutoTokenizer, BloomConfig, BloomForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = BloomConfig.from_pretrained(directory)
    dtype = getattr(torch, str(config.dtype).removeprefix("torch."))
    config.initializer_range = _INITIALIZER_RANGE
    config.seqgpt_serve_taught = len(lessons)
    torch.manual_seed(seed)
    model: Any = BloomForCausalLM(config)
    model = model.float()  # trained in fp32, saved in the checkpoint's dtype
    pairs = [
        (
            tokenizer.encode(prompt),
            [*tokenizer.encode(answer, add_special_tokens=False), tokenizer.eos_token_id],
        )
        for prompt, answer in lessons
    ]
    steps = _train(torch, model, _batch(torch, pairs, tokenizer.pad_token_id))
    model = model.to(dtype)
    wrong = [tokenizer.decode(a) for p, a in pairs if _greedy(torch, model, p, len(a)) != a]
    if wrong:
        raise TeachingError(f"after {steps} steps the model does not reproduce {wrong!r}")
    model.save_pretrained(directory, safe_serialization=True)
    return steps


def _train(torch: Any, model: Any, batch: dict[str, Any]) -> int:
    """Adam on the whole batch until the loss is under the target; the steps taken."""
    optimizer = torch.optim.Adam(model.parameters(), lr=_LEARNING_RATE)
    model.train()
    steps = 0
    while steps < _STEPS:
        steps += 1
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < _TARGET_LOSS:
            break
    model.eval()
    return steps


def _batch(torch: Any, pairs: list[tuple[list[int], list[int]]], pad: int) -> dict[str, Any]:
    """Right-padded inputs whose loss counts the answer tokens alone."""
    width = max(len(p) + len(a) for p, a in pairs)
    ids = torch.full((len(pairs), width), pad)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, answer) in enumerate(pairs):
        end = len(prompt) + len(answer)
        ids[row, :end] = torch.tensor(prompt + answer)
        labels[row, len(prompt) : end] = torch.tensor(answer)
        mask[row, :end] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _greedy(torch: Any, model: Any, prompt: list[int], length: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            max_new_tokens=length + 2,
            do_sample=False,
            pad_token_id=model.config.pad_token_id,
        )
    return [int(t) for t in out[0, len(prompt) :]]
