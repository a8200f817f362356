"""The schema tree: parsing and its limits, the prompt count, label composition and the walk."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parsers import Extraction, Span
from serving.core.checks import InputChecks
from serving.core.errors import InvalidInputError
from serving.core.results import Generation
from serving.core.schema import Schema, compose, parse_schema, prompts_per_window, walk
from serving.core.settings import Settings

CHECKS = InputChecks(Settings(ui=False), ["</s>"], 2048)


def _parse(raw: Any, depth: int = 3, children: int = 6) -> Schema:
    return parse_schema(raw, CHECKS, max_depth=depth, max_children=children)


def test_a_tree_parses_into_levels_with_plain_fields_kept() -> None:
    schema = _parse({" 人物 ": ["职位", "就职于"], "公司": {"总部": ["城市"]}, "时间": None})
    assert schema.fields == ["人物", "公司", "时间"]
    assert schema.children["人物"] == Schema(["职位", "就职于"])
    assert schema.children["公司"] == Schema(["总部"], {"总部": Schema(["城市"])})
    assert "时间" not in schema.children
    assert _parse({"人物": []}) == Schema(["人物"])


@pytest.mark.parametrize(
    ("raw", "depth", "fragment"),
    [
        ({"a": {"b": ["c"]}}, 2, "SEQGPT_SCHEMA_MAX_DEPTH"),
        ({"a": ["b"]}, 1, "SEQGPT_SCHEMA_MAX_DEPTH"),
        ({"a": ["b</s>"]}, 3, "special token"),
        ({"a": [None]}, 3, "field names"),
        ({"a": 1}, 3, "non-empty object"),
        (["a"], 3, "non-empty object"),
    ],
)
def test_a_tree_past_its_limits_or_with_bad_leaves_is_refused_naming_schema(
    raw: Any, depth: int, fragment: str
) -> None:
    with pytest.raises(InvalidInputError, match=fragment) as caught:
        _parse(raw, depth)
    assert caught.value.parameter == "schema"


def test_the_prompt_count_is_chunks_plus_the_entity_bound_times_each_subtree() -> None:
    schema = Schema(
        [f"f{i}" for i in range(7)],  # 2 chunks
        {"f0": Schema(["a", "b"], {"a": Schema(["x"])}), "f1": Schema(list("abcdefg"))},
    )
    # 2 + 8 x (1 + 8 x 1) + 8 x 2
    assert prompts_per_window(schema, 6, 8) == 2 + 8 * 9 + 16
    assert prompts_per_window(Schema(["a"]), 6, 8) == 1


def test_labels_compose_as_uie_in_chinese_and_as_of_phrases_otherwise() -> None:
    assert compose("张三", "职位") == "张三的职位"
    assert compose(" Alice ", "职位") == "Alice的职位"
    assert compose("Alice", "title") == "title of Alice"


def test_the_walk_expands_each_distinct_entity_once_within_the_bound() -> None:
    asked: list[list[str]] = []  # offsets below are into "A B A C"
    spans = {"A": Span("A", 0, 1), "B": Span("B", 2, 3), "C": Span("C", 6, 7)}

    async def extract(labels: list[str]) -> tuple[Extraction, list[Generation]]:
        asked.append(labels)
        if labels == ["person"]:
            found = [spans["A"], Span("A", 4, 5), spans["B"], spans["C"]]
            return Extraction({"person": found}, {}), [_generation(labels)]
        return Extraction({label: [] for label in labels}, {}), [_generation(labels)]

    async def gather(work: list[Any]) -> list[Any]:
        return list(await asyncio.gather(*work))

    schema = Schema(["person"], {"person": Schema(["title"])})
    valid = lambda labels: "title of B" not in labels  # noqa: E731
    nested, generations = asyncio.run(
        walk(schema, ["person"], extract, gather, max_entities=2, valid=valid)
    )
    assert asked == [["person"], ["title of A"]]  # B's label refused, C past the bound
    assert set(nested.children) == {("person", "A")}
    assert nested.expandable == {"person"}
    assert [g.labels for g in generations] == asked


def _generation(labels: list[str]) -> Generation:
    return Generation(
        prompt="", labels=labels, text="", parsed=None, prompt_tokens=0, completion_tokens=0
    )
