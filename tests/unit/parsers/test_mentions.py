"""Extraction finds every mention of a value and drops spans nested in longer ones."""

from __future__ import annotations

import pytest

from parsers import Extraction, Span, drop_nested_spans, parse_extraction_detailed

PKU_TEXT = "北京大学位于北京市海淀区，他住在北京"
PKU_LABELS = ["机构", "地点"]
PKU = Span("北京大学", 0, 4)
BJ_MID = Span("北京", 6, 8)
BJ_END = Span("北京", 16, 18)
ZH_TEXT = "张三和李四昨天在北京参加了阿里巴巴的发布会。张三很高兴。"
ZS_1, ZS_2, LS = Span("张三", 0, 2), Span("张三", 22, 24), Span("李四", 3, 5)


@pytest.mark.parametrize(
    ("generated", "labels", "text", "fields", "ungrounded"),
    [
        pytest.param(
            "机构: 北京大学\n地点: 北京",
            PKU_LABELS,
            PKU_TEXT,
            {"机构": [PKU], "地点": [BJ_MID, BJ_END]},
            {},
            id="nested-in-other-label-dropped",
        ),
        pytest.param(
            "地点: 北京",
            ["地点"],
            PKU_TEXT,
            {"地点": [Span("北京", 0, 2), BJ_MID, BJ_END]},
            {},
            id="every-mention-when-nothing-longer",
        ),
        pytest.param(
            "人名: 李四\t张三",
            ["人名"],
            ZH_TEXT,
            {"人名": [ZS_1, LS, ZS_2]},
            {},
            id="sorted-by-start",
        ),
        pytest.param(
            "地点: 北京市\t北京",
            ["地点"],
            PKU_TEXT,
            {"地点": [Span("北京", 0, 2), Span("北京市", 6, 9), BJ_END]},
            {},
            id="nested-in-same-label-dropped",
        ),
        pytest.param(
            "机构: 北京\n地点: 北京",
            PKU_LABELS,
            "他住在北京",
            {"机构": [Span("北京", 3, 5)], "地点": [Span("北京", 3, 5)]},
            {},
            id="equal-spans-under-two-labels-kept",
        ),
        pytest.param(
            "人名: 哈哈",
            ["人名"],
            "哈哈哈哈哈",
            {"人名": [Span("哈哈", 0, 2), Span("哈哈", 2, 4)]},
            {},
            id="non-overlapping-occurrences",
        ),
        pytest.param(
            "人名: “张三”",
            ["人名"],
            ZH_TEXT,
            {"人名": [ZS_1, ZS_2]},
            {},
            id="trimmed-form-every-mention",
        ),
    ],
)
def test_every_mention(
    generated: str,
    labels: list[str],
    text: str,
    fields: dict[str, list[Span]],
    ungrounded: dict[str, list[str]],
) -> None:
    assert parse_extraction_detailed(generated, labels, text) == Extraction(fields, ungrounded)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {}, id="empty"),
        pytest.param({"a": []}, {"a": []}, id="no-spans"),
        pytest.param(
            {"a": [Span("xy", 0, 2)], "b": [Span("x", 0, 1), Span("y", 1, 2)]},
            {"a": [Span("xy", 0, 2)], "b": []},
            id="inside-other-label",
        ),
        pytest.param(
            {"a": [Span("x", 0, 1), Span("xyz", 0, 3)]},
            {"a": [Span("xyz", 0, 3)]},
            id="inside-same-label",
        ),
        pytest.param(
            {"a": [Span("xy", 0, 2)], "b": [Span("xy", 0, 2)]},
            {"a": [Span("xy", 0, 2)], "b": [Span("xy", 0, 2)]},
            id="equal-spans-kept",
        ),
        pytest.param(
            {"a": [Span("xy", 0, 2)], "b": [Span("yz", 1, 3)]},
            {"a": [Span("xy", 0, 2)], "b": [Span("yz", 1, 3)]},
            id="overlapping-not-nested-kept",
        ),
        pytest.param(
            {"b": [Span("y", 1, 2)], "a": [Span("y", 1, 2), Span("xyz", 0, 3)]},
            {"b": [], "a": [Span("xyz", 0, 3)]},
            id="equal-spans-both-inside-longer",
        ),
        pytest.param(
            {"a": [Span("z", 5, 6), Span("x", 0, 1)], "b": [Span("w", 9, 10)]},
            {"a": [Span("z", 5, 6), Span("x", 0, 1)], "b": [Span("w", 9, 10)]},
            id="disjoint-kept-in-order",
        ),
    ],
)
def test_drop_nested_spans(fields: dict[str, list[Span]], expected: dict[str, list[Span]]) -> None:
    result = drop_nested_spans(fields)
    assert result == expected
    assert list(result) == list(fields)
