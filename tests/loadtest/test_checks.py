"""The response checks and SLO gates: a wrong answer is a failure, a slow endpoint breaks a gate."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.checks import (
    CheckError,
    check_batch,
    check_classify,
    check_completion,
    check_extract,
    check_stream,
)
from loadtest.slo import EndpointStats, Thresholds, breaches, parse_overrides

pytestmark = pytest.mark.unit

USAGE = {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}
CLASSIFY = {"text": "股市大涨", "labels": ["财经", "体育"]}
TEXT = "张三在北京工作"
EXTRACT = {"text": TEXT, "labels": "人物,地点"}


def classify_answer(label: Any, labels: list[str], **extra: Any) -> dict[str, Any]:
    return {"label": label, "labels": labels, "usage": USAGE, **extra}


def span(text: str, start: int) -> dict[str, Any]:
    return {"text": text, "start": start, "end": start + len(text)}


def test_classify_accepts_a_label_of_the_set() -> None:
    check_classify(CLASSIFY, classify_answer("财经", ["财经"]))
    check_classify({**CLASSIFY, "multi_label": True}, classify_answer("体育", ["体育", "财经"]))
    check_classify({**CLASSIFY, "multi_label": True}, classify_answer(None, []))


@pytest.mark.parametrize(
    ("request_extra", "answer"),
    [
        ({}, classify_answer("娱乐", ["娱乐"])),  # outside the set
        ({}, classify_answer(None, [])),  # no answer where one label is promised
        ({}, classify_answer("财经", ["体育"])),  # label and labels disagree
        ({"multi_label": True}, classify_answer("体育", ["财经", "体育"])),  # not the first
        ({"multi_label": True}, classify_answer("财经", ["财经", "财经"])),  # named twice
        ({}, classify_answer("财经", ["财经"], usage={"prompt_tokens": 1})),  # broken usage
    ],
)
def test_classify_rejects_wrong_answers(request_extra: dict[str, Any], answer: Any) -> None:
    with pytest.raises(CheckError):
        check_classify({**CLASSIFY, **request_extra}, answer)


def test_classify_accepts_no_label_from_reference_decoding_or_a_cut_answer() -> None:
    check_classify({**CLASSIFY, "decoding": "reference"}, classify_answer(None, []))
    check_classify(CLASSIFY, classify_answer(None, [], truncated=True))


SCORES = {**CLASSIFY, "scores": True}


def test_classify_accepts_scores_that_sum_to_one_with_the_best_as_label() -> None:
    check_classify(SCORES, classify_answer("体育", ["体育"], scores={"财经": 0.3, "体育": 0.7}))


@pytest.mark.parametrize(
    "scores",
    [
        None,
        {"财经": 0.3},  # a label without a score
        {"财经": 0.5, "体育": 0.3},  # does not sum to 1
        {"财经": 0.8, "体育": 0.2},  # the label is not the best-scored
        {"财经": -0.5, "体育": 1.5},
    ],
)
def test_classify_rejects_wrong_scores(scores: Any) -> None:
    with pytest.raises(CheckError):
        check_classify(SCORES, classify_answer("体育", ["体育"], scores=scores))


BATCH = {"texts": ["股市大涨", "国足晋级"], "labels": ["财经", "体育"]}


def test_batch_checks_each_item_as_its_single_request() -> None:
    answers = [classify_answer("财经", ["财经"]), classify_answer("体育", ["体育"])]
    check_batch(BATCH, {"results": answers}, check_classify)
    for results in (
        answers[:1],  # one result missing
        [answers[0], {"error": {"message": "x", "code": 429}}],  # an item failed
        [answers[0], classify_answer("娱乐", ["娱乐"])],  # an item outside the set
    ):
        with pytest.raises(CheckError):
            check_batch(BATCH, {"results": results}, check_classify)


def test_extract_accepts_grounded_spans() -> None:
    fields = {"人物": [span("张三", 0)], "地点": [span("北京", 3)]}
    check_extract(EXTRACT, {"fields": fields, "ungrounded": {"人物": ["李四"]}, "usage": USAGE})


@pytest.mark.parametrize(
    "fields",
    [
        {"人物": [span("张三", 1)], "地点": []},  # wrong offsets
        {"人物": [{"text": "张三", "start": 0, "end": 99}], "地点": []},  # beyond the text
        {"人物": [span("李四", 0)], "地点": []},  # not in the text
        {"人物": []},  # a requested label is missing
        {"人物": [], "地点": [], "时间": []},  # a label that was not requested
    ],
)
def test_extract_rejects_spans_not_in_the_text(fields: dict[str, Any]) -> None:
    with pytest.raises(CheckError):
        check_extract(EXTRACT, {"fields": fields, "usage": USAGE})


def test_completion_and_stream_checks() -> None:
    request = {"max_tokens": 2}
    answer = {"choices": [{"text": "ab", "finish_reason": "length"}], "usage": USAGE}
    check_completion(request, answer)
    with pytest.raises(CheckError):
        check_completion({"max_tokens": 1}, answer)
    events = ['data: {"choices": [{"text": "a", "finish_reason": null}]}', ""]
    events += ['data: {"choices": [{"text": "b", "finish_reason": "length"}]}', "data: [DONE]"]
    assert check_stream(request, events) == "ab"
    with pytest.raises(CheckError):
        check_stream(request, events[:-1])  # no [DONE]
    with pytest.raises(CheckError):
        check_stream(request, ['data: {"error": {"message": "boom"}}', "data: [DONE]"])


def test_gates() -> None:
    fast = EndpointStats("/v1/classify", 100, 0, 200.0)
    slow = EndpointStats("/v1/extract", 100, 2, 9000.0)
    assert breaches([fast], Thresholds(p95_ms=500)) == []
    found = breaches([fast, slow], Thresholds(max_failure_ratio=0.01, p95_ms=500))
    assert found == ["/v1/extract: failure ratio 0.020 > 0.01", "/v1/extract: p95 9000 ms > 500 ms"]
    limits = Thresholds(max_failure_ratio=0.05, p95_ms=500, p95_ms_by_name={"/v1/extract": 1e4})
    assert breaches([fast, slow], limits) == []
    assert breaches([], Thresholds()) == ["no requests were made"]
    assert parse_overrides("completions stream TTFT=500, /v1/extract=8000") == {
        "completions stream TTFT": 500.0,
        "/v1/extract": 8000.0,
    }
    with pytest.raises(ValueError, match="NAME=MILLISECONDS"):
        parse_overrides("oops")
