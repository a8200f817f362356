"""Checks on response bodies: a response that is well-formed but wrong is a failed request.

Each check takes the request body that was sent and the parsed response body, and raises
``CheckError`` with a short reason (the reason becomes locust's failure message, so keep it free
of per-request values: locust groups failures by message).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prompts import parse_labels

__all__ = [
    "CheckError",
    "check_batch",
    "check_classify",
    "check_completion",
    "check_extract",
    "check_stream",
    "check_usage",
]

FINISH_REASONS = {"length", "stop"}

# A check: the request body sent and the response body; raises CheckError.
Check = Callable[[Mapping[str, Any], Mapping[str, Any]], None]


class CheckError(AssertionError):
    """A response that does not hold what the API promises."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise CheckError(reason)


def check_usage(usage: Any) -> None:
    """Token counts are present, non-negative and add up."""
    _require(isinstance(usage, Mapping), "usage missing")
    counts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")]
    _require(all(isinstance(c, int) and c >= 0 for c in counts), "usage counts not integers")
    _require(counts[0] > 0, "usage.prompt_tokens is 0")
    _require(counts[0] + counts[1] == counts[2], "usage.total_tokens is not the sum")


def check_classify(
    request: Mapping[str, Any], body: Mapping[str, Any], *, allow_none: bool = False
) -> None:
    """The chosen label and all named labels belong to the requested set; with ``scores``,
    every label has one, they sum to 1 and the label is the best-scored one. Reference decoding
    is not constrained to the set, and an answer cut at its budget names no label it had not
    finished: either may choose none."""
    labels = set(parse_labels(request["labels"]))
    named, label = body.get("labels"), body.get("label")
    _require(isinstance(named, list), "labels is not a list")
    _require(all(n in labels for n in named), "a named label is outside the label set")
    _require(len(set(named)) == len(named), "a label is named twice")
    allow_none = allow_none or request.get("decoding") == "reference" or bool(body.get("truncated"))
    if request.get("multi_label"):
        _require(label == (named[0] if named else None), "label is not the first named label")
    elif label is None:
        _require(allow_none, "no label chosen")
    else:
        _require(label in labels and named == [label], "label is outside the label set")
    if request.get("scores"):
        _check_scores(labels, label, body.get("scores"))
    check_usage(body.get("usage"))


def _check_scores(labels: set[str], label: str | None, scores: Any) -> None:
    _require(isinstance(scores, Mapping), "scores is not an object")
    _require(set(scores) == labels, "scores do not match the label set")
    values = list(scores.values())
    _require(all(isinstance(v, float | int) and 0 <= v <= 1 for v in values), "a score is not 0-1")
    _require(abs(sum(values) - 1) < 1e-3, "scores do not sum to 1")
    _require(label is not None and scores[label] == max(values), "label is not the best-scored")


def check_batch(request: Mapping[str, Any], body: Mapping[str, Any], check_item: Check) -> None:
    """One result per text, in order, none an error, each what ``check_item`` accepts for the
    single request with that text and the batch's options."""
    texts, results = request["texts"], body.get("results")
    _require(isinstance(results, list) and len(results) == len(texts), "not one result per text")
    options = {key: value for key, value in request.items() if key != "texts"}
    for text, result in zip(texts, results, strict=True):
        _require(isinstance(result, Mapping) and "error" not in result, "a batch item failed")
        check_item({**options, "text": text}, result)


def check_extract(request: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """Every requested label is answered and every span occurs in the text at its offsets."""
    text, labels = request["text"], parse_labels(request["labels"])
    fields, ungrounded = body.get("fields"), body.get("ungrounded", {})
    _require(isinstance(fields, Mapping), "fields is not an object")
    _require(set(fields) == set(labels), "fields do not match the requested labels")
    for spans in fields.values():
        _require(isinstance(spans, list), "a field is not a list of spans")
        for span in spans:
            start, end, value = span.get("start"), span.get("end"), span.get("text")
            _require(isinstance(start, int) and isinstance(end, int), "span offsets not integers")
            _require(0 <= start < end <= len(text), "span offsets outside the text")
            _require(text[start:end] == value, "span text differs from the text at its offsets")
    _require(isinstance(ungrounded, Mapping), "ungrounded is not an object")
    _require(set(ungrounded) <= set(labels), "ungrounded names a label that was not requested")
    _require(
        all(isinstance(v, str) for values in ungrounded.values() for v in values),
        "ungrounded values are not strings",
    )
    check_usage(body.get("usage"))


def check_completion(request: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    """One text choice, a finish reason, and no more tokens than ``max_tokens``."""
    choices = body.get("choices")
    _require(isinstance(choices, list) and len(choices) == 1, "not exactly one choice")
    _require(isinstance(choices[0].get("text"), str), "choice text is not a string")
    _require(choices[0].get("finish_reason") in FINISH_REASONS, "no finish reason")
    usage = body.get("usage")
    check_usage(usage)
    _require(usage["completion_tokens"] <= request["max_tokens"], "more tokens than max_tokens")


def _events(lines: Iterable[str]) -> Iterable[Any]:
    """The JSON payloads of a server-sent event stream, up to ``[DONE]`` (then ``None``)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            yield None
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError as exc:
            raise CheckError("a stream event is not JSON") from exc


def check_stream(request: Mapping[str, Any], lines: Iterable[str]) -> str:
    """A completions stream: events with text, a finish reason, then ``[DONE]``; its text."""
    pieces: list[str] = []
    finish, done = None, False
    for event in _events(lines):
        if event is None:
            done = True
            break
        _require("error" not in event, "error event in the stream")
        choices = event.get("choices") or []
        _require(len(choices) <= 1, "more than one choice in an event")
        for choice in choices:
            _require(isinstance(choice.get("text"), str), "stream choice text is not a string")
            pieces.append(choice["text"])
            finish = choice.get("finish_reason") or finish
    _require(done, "stream ended without [DONE]")
    _require(finish in FINISH_REASONS, "stream has no finish reason")
    _require(len(pieces) <= request["max_tokens"] + 1, "more stream events than max_tokens")
    return "".join(pieces)
