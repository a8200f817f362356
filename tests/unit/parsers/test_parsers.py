"""Table-driven tests of the classification parser, from realistic (and drifting) outputs."""

from __future__ import annotations

import pytest

import parsers
from parsers import parse_classification

NEWS = ["体育", "财经", "娱乐"]
SENTIMENT = ["positive", "negative"]


def test_public_api_is_exactly_all() -> None:
    public = {name for name in vars(parsers) if not name.startswith("_")}
    modules = {"classification", "extraction", "grounding", "normalize", "spans"}
    assert set(parsers.__all__) == public - modules
    assert all(getattr(parsers, name).__doc__ for name in parsers.__all__)


@pytest.mark.parametrize(
    ("generated", "labels", "expected"),
    [
        pytest.param("体育", NEWS, ["体育"], id="plain-label"),
        pytest.param("体育</s>", NEWS, ["体育"], id="eos-token"),
        pytest.param("财经</s>体育体育", NEWS, ["财经"], id="garbage-after-eos"),
        pytest.param("体育<pad><pad>", NEWS, ["体育"], id="pad-tokens"),
        pytest.param("[GEN]娱乐", NEWS, ["娱乐"], id="gen-echo"),
        pytest.param(
            "输入: 国足今晚出战\n分类: 体育，财经，娱乐\n输出: [GEN]财经",
            NEWS,
            ["财经"],
            id="whole-prompt-echo",
        ),
        pytest.param("  体育 \n", NEWS, ["体育"], id="extra-spaces"),
        pytest.param("体育，财经", NEWS, ["体育", "财经"], id="full-width-comma"),
        pytest.param("财经, 体育", NEWS, ["财经", "体育"], id="ascii-comma-generated-order"),
        pytest.param("体育、财经；体育", NEWS, ["体育", "财经"], id="repeats-dropped"),
        pytest.param("体育\n体育\n体育", NEWS, ["体育"], id="repeated-lines"),
        pytest.param("科技", NEWS, [], id="outside-set"),
        pytest.param("科技，体育", NEWS, ["体育"], id="outside-set-mixed"),
        pytest.param("「体育」。", NEWS, ["体育"], id="quotes-and-period"),
        pytest.param("体育新闻", ["体育", "体育新闻"], ["体育新闻"], id="nested-exact"),
        pytest.param(
            "这是一条体育新闻", ["体育", "体育新闻"], ["体育新闻"], id="nested-substring-longest"
        ),
        pytest.param(
            "这篇属于财经类，也涉及体育", NEWS, ["财经", "体育"], id="substring-first-occurrence"
        ),
        pytest.param("Positive", SENTIMENT, ["positive"], id="ascii-case-insensitive"),
        pytest.param("positive", ["Positive", "positive"], ["positive"], id="exact-case-first"),
        pytest.param("The sentiment is negative.", SENTIMENT, ["negative"], id="english-sentence"),
        pytest.param("sports; Finance", ["finance", "sports"], ["sports", "finance"], id="en-semi"),
        pytest.param("Artistic work", ["A", "B"], [], id="ascii-word-boundary"),
        pytest.param("关于NBA篮球的报道", ["NBA篮球", "足球"], ["NBA篮球"], id="mixed-script"),
        pytest.param("u.s. politics", ["U.S. politics"], ["U.S. politics"], id="dotted-label"),
        pytest.param(
            "Paris, France", ["Paris, France", "Rome"], ["Paris, France"], id="comma-label"
        ),
        pytest.param("体育", [" 体育 ", "财经"], [" 体育 "], id="caller-label-string"),
        pytest.param("None", NEWS, [], id="none"),
        pytest.param("", NEWS, [], id="empty"),
        pytest.param("</s>", NEWS, [], id="only-eos"),
        pytest.param("体育", ["   "], [], id="blank-label"),
    ],
)
def test_parse_classification(generated: str, labels: list[str], expected: list[str]) -> None:
    assert parse_classification(generated, labels) == expected
