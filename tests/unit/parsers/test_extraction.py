"""Table-driven tests of the extraction parser, from realistic (and drifting) outputs."""

from __future__ import annotations

import pytest

from parsers import Extraction, Span, parse_extraction, parse_extraction_detailed

ZH_TEXT = "张三和李四昨天在北京参加了阿里巴巴的发布会。"
ZH_LABELS = ["人名", "地点", "组织"]
EN_TEXT = "Tim Cook visited Paris and Berlin for Apple."
EN_LABELS = ["person", "location", "organization"]


def _spans(text: str, values: list[str]) -> list[Span]:
    """Spans at every non-overlapping occurrence of each value: the documented grounding rule."""
    spans = []
    for value in values:
        start = text.find(value)
        while start >= 0:
            spans.append(Span(value, start, start + len(value)))
            start = text.find(value, start + len(value))
    return sorted(spans, key=lambda span: span.start)


@pytest.mark.parametrize(
    ("generated", "labels", "text", "expected", "ungrounded"),
    [
        pytest.param(
            "人名: 张三\t李四\n地点: 北京\n组织: 阿里巴巴",
            ZH_LABELS,
            ZH_TEXT,
            {"人名": ["张三", "李四"], "地点": ["北京"], "组织": ["阿里巴巴"]},
            {},
            id="zh-basic",
        ),
        pytest.param(
            "人名: 张三\n地点: None\n组织: 无",
            ZH_LABELS,
            ZH_TEXT,
            {"人名": ["张三"], "地点": [], "组织": []},
            {},
            id="none-markers",
        ),
        pytest.param(
            "人名: 张三",
            ZH_LABELS,
            ZH_TEXT,
            {"人名": ["张三"], "地点": [], "组织": []},
            {},
            id="missing-labels",
        ),
        pytest.param(
            "时间: 昨天\n人名: 张三\n职位: 经理",
            ["人名"],
            ZH_TEXT,
            {"人名": ["张三"]},
            {},
            id="labels-outside-set-ignored",
        ),
        pytest.param(
            "人名： 张三\n地点：北京",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": ["北京"]},
            {},
            id="full-width-colon",
        ),
        pytest.param(
            "   人名 :   张三  \t  李四  ",
            ["人名"],
            ZH_TEXT,
            {"人名": ["张三", "李四"]},
            {},
            id="extra-spaces",
        ),
        pytest.param(
            "人名: 张三\n人名: 张三\t李四\n人名: 李四",
            ["人名"],
            ZH_TEXT,
            {"人名": ["张三", "李四"]},
            {},
            id="repeated-lines-merged",
        ),
        pytest.param(
            "人名: 王五\n人名: 王五",
            ["人名"],
            ZH_TEXT,
            {"人名": []},
            {"人名": ["王五"]},
            id="ungrounded-deduplicated",
        ),
        pytest.param(
            "人名: 张三\t王五",
            ["人名"],
            ZH_TEXT,
            {"人名": ["张三"]},
            {"人名": ["王五"]},
            id="partly-grounded",
        ),
        pytest.param(
            "人名: 张三，李四",
            ["人名"],
            ZH_TEXT,
            {"人名": ["张三", "李四"]},
            {},
            id="full-width-comma-separator",
        ),
        pytest.param(
            "地点: 北京，上海",
            ["地点"],
            "他去过北京，上海和广州。",
            {"地点": ["北京，上海"]},
            {},
            id="whole-value-preferred",
        ),
        pytest.param(
            "人名: 张三</s>地点: 北京",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": []},
            {},
            id="garbage-after-eos",
        ),
        pytest.param(
            "输入: " + ZH_TEXT + "\n抽取: 人名，地点\n输出: [GEN]人名: 张三\n地点: 北京",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": ["北京"]},
            {},
            id="prompt-echo",
        ),
        pytest.param(
            "人名: “张三”\n地点: 北京。",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": ["北京"]},
            {},
            id="quotes-and-punctuation-trimmed",
        ),
        pytest.param(
            '话语: "你好"',
            ["话语"],
            '他说"你好"。',
            {"话语": ['"你好"']},
            {},
            id="quotes-kept-when-in-text",
        ),
        pytest.param(
            "人名:\n地点:   ",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": [], "地点": []},
            {},
            id="empty-values",
        ),
        pytest.param(
            "人名 张三\n随便说点什么\n地点: 北京",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": [], "地点": ["北京"]},
            {},
            id="lines-without-colon-ignored",
        ),
        pytest.param(
            "person: Tim Cook\nlocation: Paris\tBerlin\norganization: Apple",
            EN_LABELS,
            EN_TEXT,
            {"person": ["Tim Cook"], "location": ["Paris", "Berlin"], "organization": ["Apple"]},
            {},
            id="en-basic",
        ),
        pytest.param(
            "Person: Tim Cook\nLOCATION: none",
            ["person", "location"],
            EN_TEXT,
            {"person": ["Tim Cook"], "location": []},
            {},
            id="en-label-case-and-none",
        ),
        pytest.param(
            "person: Tim Cook, Jeff",
            ["person"],
            EN_TEXT,
            {"person": ["Tim Cook"]},
            {"person": ["Jeff"]},
            id="en-ascii-comma-split",
        ),
        pytest.param(
            "location: Paris, France",
            ["location"],
            "She lives in Paris, France.",
            {"location": ["Paris, France"]},
            {},
            id="en-whole-value-with-comma",
        ),
        pytest.param(
            "person: tim cook",
            ["person"],
            EN_TEXT,
            {"person": []},
            {"person": ["tim cook"]},
            id="en-value-case-must-match",
        ),
        pytest.param(
            "time:start: 10:30\ntime: 11:00",
            ["time", "time:start"],
            "会议10:30开始，11:00结束",
            {"time": ["11:00"], "time:start": ["10:30"]},
            {},
            id="label-with-colon",
        ),
        pytest.param(
            "地点: 北京",
            ["地", "地点"],
            ZH_TEXT,
            {"地": [], "地点": ["北京"]},
            {},
            id="longest-label-first",
        ),
        pytest.param(
            "人名: 张三",
            ["人名", "人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": []},
            {},
            id="duplicate-requested-labels",
        ),
        pytest.param(
            "人名: 张三\t张三",
            ["人名"],
            "张三说张三",
            {"人名": ["张三"]},
            {},
            id="every-mention-deduplicated",
        ),
        pytest.param(
            "人名: 张三<pad>\n地点: 北京",
            ["人名", "地点"],
            ZH_TEXT,
            {"人名": ["张三"], "地点": ["北京"]},
            {},
            id="pad-tokens",
        ),
        pytest.param(
            "人名: 张三\t李四\n组织: 腾讯\n地点: 北京",
            ZH_LABELS,
            ZH_TEXT,
            {"人名": ["张三", "李四"], "地点": ["北京"], "组织": []},
            {"组织": ["腾讯"]},
            id="hallucinated-span",
        ),
        pytest.param("", ZH_LABELS, ZH_TEXT, {label: [] for label in ZH_LABELS}, {}, id="empty"),
        pytest.param("人名: 张三", ["人名"], "", {"人名": []}, {"人名": ["张三"]}, id="empty-text"),
    ],
)
def test_parse_extraction(
    generated: str,
    labels: list[str],
    text: str,
    expected: dict[str, list[str]],
    ungrounded: dict[str, list[str]],
) -> None:
    result = parse_extraction_detailed(generated, labels, text)
    assert result == Extraction(
        fields={label: _spans(text, values) for label, values in expected.items()},
        ungrounded=ungrounded,
    )
    assert list(result.fields) == list(dict.fromkeys(labels))
    assert parse_extraction(generated, labels, text) == result.fields


def test_extraction_offsets_are_character_offsets() -> None:
    fields = parse_extraction("地点: 北京\t阿里巴巴", ["地点"], ZH_TEXT)
    assert fields == {"地点": [Span("北京", 8, 10), Span("阿里巴巴", 13, 17)]}


def test_extraction_keys_follow_request_order() -> None:
    fields = parse_extraction("组织: 阿里巴巴\n人名: 张三", ZH_LABELS, ZH_TEXT)
    assert list(fields) == ZH_LABELS


@pytest.mark.parametrize(
    ("generated", "complete", "answered"),
    [
        ("人物: 张三\n地点: None", True, ("人物", "地点")),
        ("地点: 北京\n人物: 李四", True, ("地点", "人物")),
        ("天气: 晴\n无关的话", True, ()),
        ("人物: 张三\n地点: 北", False, ("人物",)),
        ("", True, ()),
    ],
)
def test_answered_lists_the_labels_the_generation_wrote_a_line_for(
    generated: str, complete: bool, answered: tuple[str, ...]
) -> None:
    result = parse_extraction_detailed(generated, ["人物", "地点"], "张三在北京", complete=complete)
    assert result.answered == answered
