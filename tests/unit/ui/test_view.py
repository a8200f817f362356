"""What the web UI shows for an answer: pure functions, no Gradio."""

from __future__ import annotations

import pytest

from serving.contract.schemas import ClassifyResponse, SpanModel, Usage
from serving.contract.status import StatusResponse
from serving.ui.view import (
    flattened,
    highlighted,
    label_value,
    length_note,
    named_labels,
    span_rows,
    status_html,
    truncation_note,
)

TEXT = "张三于2023年5月1日在北京加入阿里巴巴。"
USAGE = Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)


def _span(text: str, start: int) -> SpanModel:
    return SpanModel(text=text, start=start, end=start + len(text))


def _status(**changes: object) -> StatusResponse:
    fields = {
        "healthy": True,
        "model": "seqgpt",
        "device": "cpu",
        "dtype": "float32",
        "cpu": "x86_64 AVX2, no native bf16",
        "running": 0,
        "waiting": 0,
        "inflight_prompts": 0,
        "max_inflight_prompts": 8,
        "draining": False,
    }
    return StatusResponse.model_validate({**fields, **changes})


def test_the_result_label_is_the_chosen_one_and_every_named_label_is_listed() -> None:
    answer = ClassifyResponse(
        label="财经", labels=["财经", "科技"], windows=1, truncated=False, usage=USAGE
    )
    assert label_value(answer) == "财经"
    assert named_labels(answer) == "财经，科技"
    nothing = ClassifyResponse(label=None, labels=[], windows=1, truncated=True, usage=USAGE)
    assert label_value(nothing) is None
    assert named_labels(nothing) == "—"
    scores = {"财经": 0.7, "科技": 0.3}
    scored = ClassifyResponse(
        label="财经", labels=["财经"], scores=scores, windows=1, truncated=False, usage=USAGE
    )
    assert label_value(scored) == scores  # gr.Label draws them as bars


def test_spans_are_highlighted_with_their_labels_and_the_text_kept_whole() -> None:
    fields = {"人物": [_span("张三", 0)], "地点": [_span("北京", 13)], "时间": []}
    segments = highlighted(TEXT, fields)
    assert "".join(piece for piece, _ in segments) == TEXT
    assert [s for s in segments if s[1]] == [("张三", "人物"), ("北京", "地点")]
    assert segments[1] == ("于2023年5月1日在", None)


def test_overlapping_spans_highlight_the_first_and_longest() -> None:
    fields = {"机构": [_span("阿里巴巴", 17)], "公司": [_span("巴巴。", 19)]}
    segments = highlighted(TEXT, fields)
    assert "".join(piece for piece, _ in segments) == TEXT
    assert [s for s in segments if s[1]] == [("阿里巴巴", "机构")]


@pytest.mark.parametrize("text", ["", "没有片段"])
def test_a_text_without_spans_is_one_plain_piece(text: str) -> None:
    assert highlighted(text, {"人物": []}) == [(text, None)]


def test_the_table_has_one_row_per_span_in_label_order() -> None:
    fields = {"地点": [_span("北京", 13)], "人物": [_span("张三", 0), _span("张三", 30)]}
    assert span_rows(fields) == [
        ["地点", "北京", 13, 15],
        ["人物", "张三", 0, 2],
        ["人物", "张三", 30, 32],
    ]


def test_notes_say_truncated_only_when_it_was() -> None:
    assert truncation_note(False) == length_note(False) == ""
    assert "truncated: true" in truncation_note(True)
    assert "finish_reason: length" in length_note(True)


def test_the_light_is_green_with_model_device_and_dtype_when_healthy() -> None:
    shown = status_html(_status(), "12:00:00")
    assert 'data-state="ok"' in shown
    assert "Healthy" in shown
    assert "seqgpt · CPU · float32" in shown
    assert "12:00:00" in shown
    assert "GPU" in status_html(_status(device="cuda"), "t")
    assert "XPU" in status_html(_status(device="xpu"), "t")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (_status(healthy=False), "The engine does not answer its health check."),
        (_status(draining=True), "The server is shutting down."),
        (None, "The server's status could not be read."),
    ],
)
def test_the_light_is_red_with_the_reason_when_not(
    status: StatusResponse | None, reason: str
) -> None:
    shown = status_html(status, "12:00:00")
    assert 'data-state="down"' in shown
    assert reason.replace("'", "&#x27;") in shown


def test_the_model_name_is_escaped() -> None:
    shown = status_html(_status(model="<script>x</script>"), "t")
    assert "<script>" not in shown
    assert "&lt;script&gt;" in shown


def test_a_nested_answer_flattens_to_one_row_per_span_with_its_path() -> None:
    manager = SpanModel(text="经理", start=8, end=10)
    zhang = SpanModel(text="张三", start=0, end=2, fields={"职位": [manager]}, ungrounded={})
    li = SpanModel(text="李四", start=3, end=5, fields=None)
    flat = flattened({"人物": [zhang, li], "地点": []})
    assert span_rows(flat) == [
        ["人物", "张三", 0, 2],
        ["人物", "李四", 3, 5],
        ["人物 › 张三 › 职位", "经理", 8, 10],
    ]
    assert flattened({"人物": [_span("张三", 0)]}) == {"人物": [_span("张三", 0)]}
