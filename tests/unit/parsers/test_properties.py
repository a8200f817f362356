"""Property tests: the parsers never raise, and their results keep their promises."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import Span, parse_classification, parse_extraction, parse_extraction_detailed

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

# Pieces SeqGPT outputs are made of, so random strings often hit the interesting paths.
TOKENS = ["</s>", "<s>", "<pad>", "[GEN]", "None", "无", ":", "：", "，", ",", "\t", "\n", " "]
WORDS = ["张三", "北京", "体育", "体育新闻", "Tim Cook", "Paris", "人名", "地点", "person", "A"]

fragments = st.one_of(st.text(max_size=8), st.sampled_from(TOKENS), st.sampled_from(WORDS))
noisy_text = st.lists(fragments, max_size=12).map("".join)
label = st.one_of(st.text(min_size=1, max_size=6), st.sampled_from(WORDS))
labels = st.lists(label, min_size=1, max_size=8)


@st.composite
def extraction_output(draw: st.DrawFn) -> tuple[str, list[str], str]:
    """A generation shaped like SeqGPT's: label lines whose values come partly from the text."""
    text = draw(noisy_text)
    requested = draw(labels)
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(requested), label))
        start = draw(st.integers(0, len(text)))
        piece = text[start : draw(st.integers(start, len(text)))]
        values = draw(st.lists(st.one_of(st.just(piece), noisy_text), max_size=3))
        colon = draw(st.sampled_from([":", "：", " : ", ": "]))
        separator = draw(st.sampled_from(["\t", "，"]))
        lines.append(name + colon + separator.join(values))
    return "\n".join(lines), requested, text


@PROPERTY_SETTINGS
@given(generated=noisy_text, requested=labels)
def test_classification_is_a_subset_without_duplicates(
    generated: str, requested: list[str]
) -> None:
    result = parse_classification(generated, requested)
    assert set(result) <= set(requested)
    assert len(result) == len(set(result))


@PROPERTY_SETTINGS
@given(
    requested=st.lists(st.text("体育财经娱乐sportSPORT ", min_size=1), min_size=1), data=st.data()
)
def test_classification_finds_a_generated_label(requested: list[str], data: st.DataObject) -> None:
    chosen = data.draw(st.sampled_from(requested))
    first_with_same_key = next(lab for lab in requested if lab.strip() == chosen.strip())
    expected = [first_with_same_key] if chosen.strip() else []
    assert parse_classification(chosen, requested) == expected


def _check_extraction(generated: str, requested: list[str], text: str) -> None:
    """Every requested label is a key, and every span is a non-empty slice of the text."""
    result = parse_extraction_detailed(generated, requested, text)
    assert list(result.fields) == list(dict.fromkeys(requested))
    assert set(result.ungrounded) <= set(requested)
    for spans in result.fields.values():
        assert len({(span.start, span.end) for span in spans}) == len(spans)
        for span in spans:
            assert span.text
            assert text[span.start : span.end] == span.text
    assert all(result.ungrounded.values())
    assert parse_extraction(generated, requested, text) == result.fields


@PROPERTY_SETTINGS
@given(generated=noisy_text, requested=labels, text=noisy_text)
def test_extraction_on_arbitrary_strings(generated: str, requested: list[str], text: str) -> None:
    _check_extraction(generated, requested, text)


@PROPERTY_SETTINGS
@given(case=extraction_output())
def test_extraction_on_seqgpt_shaped_output(case: tuple[str, list[str], str]) -> None:
    _check_extraction(*case)


@PROPERTY_SETTINGS
@given(text=st.text("张三李四北京上海abcXYZ ", min_size=1), data=st.data())
def test_extraction_grounds_a_copied_span(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text) - 1))
    value = text[start : data.draw(st.integers(start + 1, len(text)))].strip()
    fields = parse_extraction(f"人名: {value}", ["人名"], text)
    # Every mention: the non-overlapping occurrences, left to right (as re.finditer finds them).
    expected = [Span(value, m.start(), m.end()) for m in re.finditer(re.escape(value), text)]
    assert fields == {"人名": expected if value else []}
