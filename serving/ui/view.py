"""What the web UI shows, as pure functions of the API's answers (no Gradio, no I/O).

The page shows the REST API's own response bodies (``serving.contract.schemas``), so a result on the
page and the same request's JSON from ``/v1/classify`` or ``/v1/extract`` agree field for field.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from serving.contract.schemas import ClassifyResponse
from serving.contract.status import StatusResponse

__all__ = [
    "SPAN_COLUMNS",
    "Segment",
    "SpanLike",
    "flattened",
    "highlighted",
    "label_value",
    "length_note",
    "named_labels",
    "span_rows",
    "status_html",
    "truncation_note",
]

SPAN_COLUMNS = ["标签 Label", "片段 Span", "起 Start", "止 End"]
Segment = tuple[str, str | None]
"""A piece of the text and the label it is a span of (None: plain text), for gr.HighlightedText."""


class SpanLike(Protocol):
    """A span as the API gives it (``SpanModel``)."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


def label_value(response: ClassifyResponse) -> str | dict[str, float] | None:
    """What the result's ``gr.Label`` shows: ``{label: score}`` when the answer has scores
    (``gr.Label`` draws them as bars, the best first), else the chosen label."""
    return response.scores if response.scores is not None else response.label


def named_labels(response: ClassifyResponse) -> str:
    """Every label the model named, in its order, or a dash for none."""
    return "，".join(response.labels) or "—"


def span_rows(fields: Mapping[str, Sequence[SpanLike]]) -> list[list[str | int]]:
    """The extraction table: one row per span, in label order, then by position."""
    return [[label, s.text, s.start, s.end] for label, spans in fields.items() for s in spans]


def flattened(fields: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """A schema's nested answer as flat fields for the table and the highlighting: a child's
    label is its path, ``人物 › 张三 › 职位``; a plain answer stays as it is."""
    flat: dict[str, list[Any]] = {}
    for label, spans in fields.items():
        flat[label] = list(spans)
        for span in spans:
            below = getattr(span, "fields", None) or {}
            for path, found in flattened(below).items():
                flat.setdefault(f"{label} › {span.text} › {path}", []).extend(found)
    return flat


def highlighted(text: str, fields: Mapping[str, Sequence[SpanLike]]) -> list[Segment]:
    """The text cut into plain pieces and spans, for ``gr.HighlightedText``.

    Spans may overlap across labels; a span starting inside one already shown is left out of
    the highlighting (it stays in the table).
    """
    spans = sorted(
        ((s.start, s.end, label) for label, group in fields.items() for s in group),
        key=lambda span: (span[0], -span[1]),
    )
    segments: list[Segment] = []
    shown = 0
    for start, end, label in spans:
        if start < shown:
            continue
        if start > shown:
            segments.append((text[shown:start], None))
        segments.append((text[start:end], label))
        shown = end
    if shown < len(text) or not segments:
        segments.append((text[shown:], None))
    return segments


def truncation_note(truncated: bool) -> str:
    """A line saying a task's answer was cut at its token budget (empty when it was not)."""
    if not truncated:
        return ""
    return (
        "⚠️ 截断 Truncated: 回答在生成上限处停止，未写完的值已略去。 An answer stopped at its "
        "token budget; the value it was writing is left out (`truncated: true`)."
    )


def length_note(truncated: bool) -> str:
    """A line saying a free prompt's generation stopped at max tokens (empty when it did not)."""
    if not truncated:
        return ""
    return (
        "⚠️ 截断 Truncated: 生成在最大长度处停止。 The generation stopped at max new tokens "
        "(`finish_reason: length`); an extraction line it was writing is not read as a field."
    )


_DEVICES = {"cpu": "CPU", "cuda": "GPU"}


def status_html(status: StatusResponse | None, checked: str) -> str:
    """The status light: green when the engine is healthy, red with the reason when not."""
    if status is None:
        return _light(False, "状态不可读 The server's status could not be read.", checked)
    device = _DEVICES.get(status.device, status.device.upper())
    facts = " · ".join(html.escape(fact) for fact in (status.model, device, status.dtype) if fact)
    if status.draining:
        return _light(False, "服务器正在停止 The server is shutting down.", checked, facts)
    if not status.healthy:
        reason = "引擎无响应 The engine does not answer its health check."
        return _light(False, reason, checked, facts)
    return _light(True, "正常 Healthy", checked, facts)


def _light(ok: bool, words: str, checked: str, facts: str = "") -> str:
    state = "ok" if ok else "down"
    facts_html = f'<span class="seqgpt-facts">{facts}</span>' if facts else ""
    return (
        f'<div class="seqgpt-status" data-state="{state}">'
        f'<span class="seqgpt-light {state}" aria-hidden="true">●</span> '
        f'<span class="seqgpt-reason">{html.escape(words)}</span> {facts_html} '
        f'<span class="seqgpt-checked">检查于 checked {html.escape(checked)}</span></div>'
    )
