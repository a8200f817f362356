"""Nested schemas on the real tiny server (the tier's shared one): the answer's shape, every
child span grounded in the text, the prompts exactly the plan's (top level, then each expanded
entity's children in order), the batch form, and a tree too big for the in-flight bound (413)
refused before any work. Random weights answer nonsense, so values are not checked on it
(``tests/api/test_schema.py`` checks them on a scripted engine); a tiny model taught the schema
benchmark's answers (``make-test-model --teach``) gives a real engine's nested answer, checked
whole."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtest import schema_benchmark
from loadtest.schema_benchmark import taught_model
from loadtest.server import ServerProcess
from prompts import build_extract_prompts
from serving.core.schema import compose
from tests.servers import tiny_server

pytestmark = pytest.mark.timeout(600)

TEXT = "张三是阿里巴巴的经理，李四在北京的腾讯工作。王五和赵六去了上海。"
SCHEMA = {"人物": ["职位", "就职于"], "地点": None}
CHILDREN = ["职位", "就职于"]
MAX_ENTITIES = 8  # SEQGPT_SCHEMA_MAX_ENTITIES's default


def _check_span(span: dict[str, Any], text: str) -> None:
    assert text[span["start"] : span["end"]] == span["text"]


def _expected_prompts(text: str, answer: dict[str, Any]) -> list[str]:
    """The plan: the top level's prompts, then each expanded entity's children's prompts."""
    prompts = build_extract_prompts(text, list(SCHEMA))
    entities = list(dict.fromkeys(s["text"] for s in answer["fields"]["人物"]))
    for entity in entities[:MAX_ENTITIES]:
        if any(s["text"] == entity and s["fields"] is not None for s in answer["fields"]["人物"]):
            prompts += build_extract_prompts(text, [compose(entity, c) for c in CHILDREN])
    return prompts


def _check_answer(answer: dict[str, Any], text: str) -> None:
    assert list(answer["fields"]) == list(SCHEMA)
    for span in answer["fields"]["地点"]:
        _check_span(span, text)
        assert "fields" not in span  # no children asked
    distinct = list(dict.fromkeys(s["text"] for s in answer["fields"]["人物"]))
    for span in answer["fields"]["人物"]:
        _check_span(span, text)
        if span["fields"] is None:  # not expanded: past the limit, or an unusable label
            continue
        assert distinct.index(span["text"]) < MAX_ENTITIES
        assert list(span["fields"]) == CHILDREN
        for child in CHILDREN:
            for below in span["fields"][child]:
                _check_span(below, text)
        assert set(span["ungrounded"]) <= set(CHILDREN)


def test_a_schema_request_answers_nested_spans_with_the_plans_prompts(
    http: httpx.Client,
) -> None:
    body = {"text": TEXT, "schema": SCHEMA, "return_prompts": True}
    response = http.post("/v1/extract", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    _check_answer(answer, TEXT)
    assert answer["windows"] == 1
    assert answer["prompts"] == _expected_prompts(TEXT, answer)
    assert len(answer["generations"]) == len(answer["prompts"])


def test_a_batch_with_a_schema_answers_every_text(http: httpx.Client) -> None:
    texts = [TEXT, "王五在上海。"]
    response = http.post("/v1/extract/batch", json={"texts": texts, "schema": SCHEMA})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2
    for answer, text in zip(results, texts, strict=True):
        _check_answer(answer, text)


def test_a_tree_too_big_for_the_bound_is_a_413_and_a_bad_one_a_400(http: httpx.Client) -> None:
    bound = http.get("/v1/status").json()["max_inflight_prompts"]
    # 20 fields (the server's SEQGPT_MAX_LABELS), each 8 entities x (1 + 6 x 8 x 1) prompts.
    level = {f"属性{i}": [f"细节{j}" for j in range(6)] for i in range(6)}
    tree = {f"字段{i}": level for i in range(20)}
    needed = 4 + 20 * MAX_ENTITIES * (1 + 6 * MAX_ENTITIES)
    assert needed > bound, "the tree must be over this server's bound"
    response = http.post("/v1/extract", json={"text": TEXT, "schema": tree})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["param"] == "schema"
    assert f"{needed} prompts" in error["message"]
    bad = http.post("/v1/extract", json={"text": TEXT, "schema": {"人物": [3]}})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "schema"
    assert http.get("/v1/status").json()["inflight_prompts"] == 0


@pytest.fixture(scope="module")
def taught(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of a tiny model taught the schema benchmark's text (about a minute to make)."""
    model = taught_model(tmp_path_factory.mktemp("taught") / "tiny-taught")
    with tiny_server(model) as server:
        yield server


def test_a_taught_model_answers_the_nested_schema_it_was_taught(taught: ServerProcess) -> None:
    body = {"text": schema_benchmark.TEXT, "schema": schema_benchmark.SCHEMA}
    answer = httpx.post(taught.url + "/v1/extract", json=body, timeout=300).json()

    def tree(spans: list[dict[str, Any]]) -> list[Any]:
        for span in spans:
            _check_span(span, schema_benchmark.TEXT)
        return [
            (s["text"], {k: tree(v) for k, v in s["fields"].items()} if "fields" in s else None)
            for s in spans
        ]

    assert {field: tree(spans) for field, spans in answer["fields"].items()} == {
        "人物": [
            ("张三", {"职位": [("技术总监", None)], "就职于": [("阿里巴巴", None)],
                     "工作地点": [("北京", None)]}),
            ("李四", {"职位": [("产品经理", None)], "就职于": [("腾讯", None)],
                     "工作地点": [("深圳", None)]}),
        ],
        "公司": [("阿里巴巴", {"总部": []}), ("腾讯", {"总部": [("深圳", None)]})],
    }  # fmt: skip
