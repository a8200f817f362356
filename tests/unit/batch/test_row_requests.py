"""A batch row's request and answer in the REST API's terms, and the in-process runner over a
fake engine (the real service: same checks, bound, errors)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from vllm.sampling_params import SamplingParams
from vllm.v1.engine.exceptions import EngineDeadError

from serving.batch.engine import EngineAnswerer, build_service
from serving.batch.files import BadRow, Row
from serving.batch.row_requests import RowRequest, RunFailed, request_of
from serving.core.settings import Settings
from tests.api.fake_engine import FakeEngine


def _error(answer: Any) -> dict[str, Any]:
    assert isinstance(answer, dict), answer
    error: dict[str, Any] = answer["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(
    ("task", "labels", "fields", "expected"),
    [
        ("classify", "a,b", {"text": "t"}, RowRequest("classify", "t", "a,b", "batch-r")),
        (
            "classify",
            "a,b",
            {"text": "t", "labels": ["x"]},
            RowRequest("classify", "t", ["x"], "batch-r"),
        ),
        (
            "extract",
            None,
            {"text": "t", "labels": "x,y"},
            RowRequest("extract", "t", "x,y", "batch-r"),
        ),
    ],
)
def test_a_row_becomes_a_request_its_own_labels_first(
    task: str, labels: str | None, fields: dict[str, Any], expected: RowRequest
) -> None:
    assert request_of(task, Row(3, "r", fields), labels) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (Row(3, "r-1.a:b_c", {"text": "t"}), "batch-r-1.a:b_c"),
        (Row(4, 17, {"text": "t"}), "batch-17"),
        (Row(5, "张三", {"text": "t"}), "batch-row5-1d841bc0ee98309c"),
        (Row(6, "x" * 130, {"text": "t"}), "batch-row6-"),
    ],
)
def test_a_request_id_is_always_one_a_server_keeps(row: Row, expected: str) -> None:
    request = request_of("classify", row, "a")
    assert isinstance(request, RowRequest)
    assert request.request_id.startswith(expected)
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", request.request_id)
    assert request_of("classify", row, "a") == request  # the same on every run


def test_a_rows_labels_can_be_left_out_of_its_request() -> None:
    row = Row(1, 1, {"text": "t", "labels": ["gold"]})
    request = request_of("classify", row, "a,b", own_labels=False)
    assert isinstance(request, RowRequest)
    assert request.labels == "a,b"


def test_multi_label_goes_into_the_body() -> None:
    request = request_of("classify_multi", Row(1, 1, {"text": "t"}), "a,b")
    assert isinstance(request, RowRequest)
    assert request.body() == {"text": "t", "labels": "a,b", "multi_label": True}
    assert RowRequest("extract", "t", ["a"], "x").body() == {"text": "t", "labels": ["a"]}


@pytest.mark.parametrize(
    ("fields", "labels", "param", "message"),
    [
        ({}, "a", "text", "The field 'text' is required."),
        ({"text": 5}, "a", "text", "'text': input should be a valid string"),
        ({"text": " \n"}, "a", "text", "The text is empty or blank."),
        ({"text": "x\udfff"}, "a", "text", "unpaired surrogate"),
        ({"text": "x", "labels": [1]}, None, "labels", "'labels[0]'"),
        ({"text": "x", "labels": 3}, None, "labels", "'labels'"),
        (
            {"text": "x"},
            None,
            "labels",
            "Row 4 has no labels, and the command was given no --labels.",
        ),
    ],
)
def test_a_bad_row_gets_the_apis_400(
    fields: dict[str, Any], labels: str | None, param: str, message: str
) -> None:
    error = _error(request_of("extract", Row(4, "r", fields), labels))
    assert (error["code"], error["type"], error["param"]) == (400, "BadRequestError", param)
    assert message in error["message"]


def test_an_unreadable_row_gets_a_400_naming_its_problem() -> None:
    error = _error(request_of("classify", BadRow(2, None, "Row 2 repeats ...", "id"), "a"))
    assert error == {
        "message": "Row 2 repeats ...",
        "type": "BadRequestError",
        "param": "id",
        "code": 400,
    }


def test_a_row_over_the_size_limit_gets_a_413_without_param() -> None:
    row = BadRow(5, None, "Row 5 has 300 bytes, over the limit ...", status=413)
    assert _error(request_of("extract", row, "a")) == {
        "message": "Row 5 has 300 bytes, over the limit ...",
        "type": "RequestTooLargeError",
        "param": None,
        "code": 413,
    }


# --- the in-process runner, over a fake engine -------------------------------------------------


def _runner(engine: FakeEngine, **settings: Any) -> EngineAnswerer:
    return EngineAnswerer(build_service(engine, Settings(**settings)), batch_size=8)


def _run(runner: EngineAnswerer, *requests: RowRequest) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(runner.answer(r) for r in requests)))

    return asyncio.run(main())


def test_answers_have_the_rest_shape() -> None:
    engine = FakeEngine(
        respond=lambda prompt, _p: "b" if "分类" in prompt else "人物: 张三\n地点: None"
    )
    classify, extract = _run(
        _runner(engine),
        RowRequest("classify", "今天", ["a", "b"], "batch-1"),
        RowRequest("extract", "张三来了", ["人物", "地点"], "batch-2"),
    )
    assert classify == {
        "label": "b",
        "labels": ["b"],
        "windows": 1,
        "truncated": False,
        "usage": {"prompt_tokens": 24, "completion_tokens": 1, "total_tokens": 25},
    }
    assert extract["fields"] == {"人物": [{"text": "张三", "start": 0, "end": 2}], "地点": []}
    assert list(extract) == ["fields", "ungrounded", "windows", "truncated", "usage"]
    assert engine.calls[0].request_id.startswith("batch-1-")


def test_the_services_400_is_the_rows_error_as_the_server_renders_it() -> None:
    (answer,) = _run(_runner(FakeEngine()), RowRequest("classify", "t", "a，b,a\nb", "batch-1"))
    error = _error(answer)
    assert (error["code"], error["param"]) == (400, "labels")
    assert "line break or a comma" in error["message"]


def test_the_servers_limits_apply() -> None:
    runner = _runner(FakeEngine(), max_text_chars=3)
    (answer,) = _run(runner, RowRequest("classify", "long text", "a", "batch-1"))
    assert "at most 3" in _error(answer)["message"]


def test_a_row_over_the_in_flight_bound_waits_for_another_to_finish() -> None:
    # 7 labels make 2 extraction prompts with chunks of 6; a bound of 3 admits one row at a time.
    engine = FakeEngine(respond=lambda _prompt, _p: "", delay=0.05)
    runner = _runner(engine, max_inflight=3, max_labels=7)
    labels = [f"l{i}" for i in range(7)]
    answers = _run(runner, *(RowRequest("extract", "t", labels, f"batch-{i}") for i in range(4)))
    assert all("fields" in answer for answer in answers), answers
    assert len(engine.calls) == 8


def test_a_failed_generation_is_the_rows_500() -> None:
    engine = FakeEngine(respond=lambda _prompt, _p: RuntimeError("boom"))
    (answer,) = _run(_runner(engine), RowRequest("classify", "t", "a,b", "batch-1"))
    error = _error(answer)
    assert (error["code"], error["type"]) == (500, "InternalServerError")
    assert "boom" not in error["message"]


def test_a_dead_engine_ends_the_run() -> None:
    engine = FakeEngine(respond=lambda _prompt, _p: EngineDeadError())
    with pytest.raises(RunFailed, match="the engine stopped"):
        _run(_runner(engine), RowRequest("classify", "t", "a,b", "batch-1"))


def test_the_runner_decodes_as_the_server_does() -> None:
    engine = FakeEngine(respond=lambda _prompt, _p: "a")
    _run(_runner(engine), RowRequest("classify", "t", "a,b", "batch-1"))
    params: SamplingParams = engine.calls[0].params
    assert params.temperature == 0.0
    assert params.structured_outputs is not None
    assert params.structured_outputs.choice == ["a", "b"]


def test_the_default_concurrency_is_the_engines_batch() -> None:
    assert _runner(FakeEngine()).default_concurrency == 8


def test_the_service_refuses_a_bound_below_one_request() -> None:
    with pytest.raises(RunFailed, match="SEQGPT_MAX_INFLIGHT=1"):
        build_service(FakeEngine(), Settings(max_inflight=1, max_labels=13))


# --- --schema: the same tree for every row ------------------------------------------------------


def test_a_schema_is_sent_for_every_row_instead_of_its_labels() -> None:
    schema = {"人物": ["职位"]}
    request = request_of("extract", Row(1, "r", {"text": "t", "labels": "x"}), None, schema)
    assert request == RowRequest("extract", "t", None, "batch-r", schema)
    assert isinstance(request, RowRequest)
    assert request.body() == {"text": "t", "schema": schema}


def test_a_schema_row_is_answered_nested_and_a_bad_schema_is_the_rows_400() -> None:
    answers = {"人物": "人物: 张三", "张三的职位": "张三的职位: 经理"}

    def respond(prompt: str, _params: Any) -> str:
        return next((a for label, a in answers.items() if f"抽取: {label}\n" in prompt), "")

    engine = FakeEngine(respond=respond)
    good, bad = _run(
        _runner(engine),
        RowRequest("extract", "张三是经理", None, "batch-1", {"人物": ["职位"]}),
        RowRequest("extract", "张三是经理", None, "batch-2", {"人物": [1]}),
    )
    assert good["fields"] == {
        "人物": [
            {
                "text": "张三",
                "start": 0,
                "end": 2,
                "fields": {"职位": [{"text": "经理", "start": 3, "end": 5}]},
                "ungrounded": {},
            }
        ]
    }
    assert _error(bad)["param"] == "schema"
    assert len(engine.calls) == 2
