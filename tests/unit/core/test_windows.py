"""Long documents in windows: sentences, packing with overlap, offsets, de-duplication, votes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import Extraction, Span, parse_extraction_detailed
from serving.core.windows import (
    Window,
    merge_extractions,
    plan_windows,
    split_sentences,
    union_labels,
    vote_label,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


def chars(text: str) -> int:
    """One token per character."""
    return len(text)


def utf8_bytes(text: str) -> int:
    """One token per UTF-8 byte: a CJK character is 3 tokens, as in a byte-level BPE."""
    return len(text.encode())


def pieces(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("今天下雨。明天晴！后天呢？", ["今天下雨。", "明天晴！", "后天呢？"]),
        ("Hello world. How are you? Fine!", ["Hello world. ", "How are you? ", "Fine!"]),
        ("好的！！真的？？", ["好的！！", "真的？？"]),
        ("Wait... what?! Yes", ["Wait... ", "what?! ", "Yes"]),
        ("Pi is 3.14 and e is 2.72. Next", ["Pi is 3.14 and e is 2.72. ", "Next"]),
        ("See U.S.A today.", ["See U.S.A today."]),
        ("a\nb\r\nc", ["a\n", "b\r\n", "c"]),
        ("第一行\n\n  第二行", ["第一行\n\n  ", "第二行"]),
        ('他说："好。"然后走了。', ['他说："好。"', "然后走了。"]),
        ("他说：“好。”然后走了。", ["他说：“好。”", "然后走了。"]),
        ('She said "yes." Then left.', ['She said "yes." ', "Then left."]),
        ("没有标点的一句话", ["没有标点的一句话"]),
        ("", []),
        ("  开头有空格。", ["  开头有空格。"]),
        ("中文。English. 混合！", ["中文。", "English. ", "混合！"]),
    ],
)
def test_sentences_end_at_cjk_and_english_punctuation_and_line_breaks(
    text: str, sentences: list[str]
) -> None:
    assert pieces(text) == sentences


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.sampled_from(list("ab字 。！？.!?\n\r”)")), max_size=60))
def test_sentences_cover_the_text_exactly(text: str) -> None:
    bounds = split_sentences(text)
    assert "".join(text[s:e] for s, e in bounds) == text
    assert all(s < e for s, e in bounds)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


# ---------------------------------------------------------------- packing

SENTENCES = "".join(f"第{i}句话说了一些事情。" for i in range(40))  # 9 or 10 characters each


def test_a_text_within_the_budget_is_one_window_the_whole_text() -> None:
    assert plan_windows("短文本。还有一句。", 100, 10, chars) == [Window(0, 9)]
    assert plan_windows("  带空格  ", 100, 10, chars) == [Window(0, 7)]


def test_windows_are_whole_sentences_within_the_budget_and_overlap() -> None:
    windows = plan_windows(SENTENCES, 50, 20, chars)
    assert len(windows) > 1
    starts = {s for s, _ in split_sentences(SENTENCES)}
    ends = {e for _, e in split_sentences(SENTENCES)}
    for window in windows:
        assert window.start in starts
        assert window.end in ends
        assert window.end - window.start <= 50
    for before, after in itertools.pairwise(windows):
        assert after.start < before.end  # they overlap ...
        assert before.end - after.start <= 20  # ... by at most the overlap
        assert after.end > before.end
    assert windows[0].start == 0
    assert windows[-1].end == len(SENTENCES)


def test_no_overlap_when_it_is_zero() -> None:
    windows = plan_windows(SENTENCES, 50, 0, chars)
    for before, after in itertools.pairwise(windows):
        assert after.start == before.end


def test_the_overlap_is_at_most_half_a_window() -> None:
    windows = plan_windows(SENTENCES, 40, 1000, chars)
    for before, after in itertools.pairwise(windows):
        assert before.end - after.start <= 20
    assert len(windows) <= 2 * len(SENTENCES) // 20 + 1


def test_a_sentence_longer_than_a_window_is_cut_at_character_boundaries() -> None:
    text = "短句。" + "字" * 95 + "。又一句。"
    windows = plan_windows(text, 30, 0, chars)
    assert all(w.end - w.start <= 30 for w in windows)
    assert "".join(text[w.start : w.end] for w in windows) == text


def test_a_cut_prefers_a_blank_or_a_comma() -> None:
    text = " ".join(["word"] * 60)  # one sentence of 299 characters
    windows = plan_windows(text, 50, 0, chars)
    assert len(windows) > 1
    for window in windows[:-1]:
        assert text[window.end - 1] == " "


def test_a_cut_sentence_keeps_its_overlap() -> None:
    text = "字" * 200
    windows = plan_windows(text, 40, 10, chars)
    for before, after in itertools.pairwise(windows):
        assert 0 < before.end - after.start <= 10


def test_tokens_are_what_count_says_not_characters() -> None:
    text = "北京欢迎你。" * 20  # 18 bytes a sentence
    windows = plan_windows(text, 40, 18, utf8_bytes)
    assert len(windows) > 1
    assert all(utf8_bytes(text[w.start : w.end]) <= 40 for w in windows)
    assert windows[-1].end == len(text)


def test_a_budget_below_one_token_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        plan_windows("文本", 0, 0, chars)


_document = st.lists(
    st.one_of(
        st.sampled_from(["张三在北京。", "Hello there. ", "长" * 30, "\n", "好！", " "]),
        st.text(alphabet=st.sampled_from(list("ab字。.! \n")), max_size=20),
    ),
    max_size=30,
).map("".join)


@PROPERTY_SETTINGS
@given(_document, st.integers(4, 60), st.integers(0, 40), st.sampled_from([chars, utf8_bytes]))
def test_windows_cover_every_character_within_budget_and_advance(
    text: str, budget: int, overlap: int, count: object
) -> None:
    assert callable(count)
    if not text or count(text[:1]) > budget:  # one character over the budget cannot fit
        return
    windows = plan_windows(text, budget, overlap, count)
    covered = [False] * len(text)
    for window in windows:
        for position in range(window.start, window.end):
            covered[position] = True
    assert all(covered)
    if len(windows) > 1:
        assert all(count(text[w.start : w.end]) <= budget for w in windows)
    assert windows[0].start == 0
    assert windows[-1].end == len(text)
    for before, after in itertools.pairwise(windows):
        assert before.start < after.start <= before.end < after.end


# ---------------------------------------------------------------- spans


def test_spans_are_shifted_into_the_text_and_kept_once() -> None:
    text = "张三在北京。李四在上海。王五在北京。"
    first, second = Window(0, 12), Window(6, 18)  # they overlap on "李四在上海。"
    parts = []
    for window in (first, second):
        part = text[window.start : window.end]
        generated = "人物: 张三\t李四\t王五\n地点: 北京\t上海"
        parts.append((window.start, parse_extraction_detailed(generated, ["人物", "地点"], part)))
    merged = merge_extractions(parts)
    assert merged.fields == {
        "人物": [Span("张三", 0, 2), Span("李四", 6, 8), Span("王五", 12, 14)],
        "地点": [Span("北京", 3, 5), Span("上海", 9, 11), Span("北京", 15, 17)],
    }
    for spans in merged.fields.values():
        for span in spans:
            assert text[span.start : span.end] == span.text
    # Values a window does not hold are ungrounded there, listed once.
    assert merged.ungrounded == {"人物": ["王五", "张三"]}


def test_a_span_inside_a_longer_span_of_another_window_is_dropped() -> None:
    longer = Extraction(fields={"机构": [Span("北京大学", 0, 4)], "地点": []}, ungrounded={})
    inner = Extraction(fields={"机构": [], "地点": [Span("北京", 0, 2)]}, ungrounded={})
    merged = merge_extractions([(10, longer), (10, inner)])
    assert merged.fields == {"机构": [Span("北京大学", 10, 14)], "地点": []}


def test_one_window_merges_to_its_own_extraction() -> None:
    text = "张三于2023年在北京加入阿里巴巴。"
    one = parse_extraction_detailed(
        "人物: 张三\n地点: 北京\n机构: 腾讯", ["人物", "地点", "机构"], text
    )
    assert merge_extractions([(0, one)]) == one


@PROPERTY_SETTINGS
@given(_document, st.integers(8, 40), st.integers(0, 20), st.data())
def test_every_merged_span_is_a_slice_of_the_original_text(
    text: str, budget: int, overlap: int, data: st.DataObject
) -> None:
    if not text:
        return
    parts = []
    for window in plan_windows(text, budget, overlap, chars):
        part = text[window.start : window.end]
        start = data.draw(st.integers(0, len(part)))
        value = part[start : data.draw(st.integers(start, len(part)))]
        extraction = parse_extraction_detailed(f"甲: {value}\n乙: 北京", ["甲", "乙"], part)
        parts.append((window.start, extraction))
    merged = merge_extractions(parts)
    for spans in merged.fields.values():
        assert len({(s.start, s.end) for s in spans}) == len(spans)
        assert [s.start for s in spans] == sorted(s.start for s in spans)
        for span in spans:
            assert text[span.start : span.end] == span.text


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("named", "label"),
    [
        ([["财经"]], ["财经"]),
        ([["财经", "体育"]], ["财经", "体育"]),  # one window: its answer as it is
        ([[]], []),
        ([["体育"], ["财经"], ["财经"]], ["财经"]),  # the majority
        ([["体育"], ["财经"]], ["体育"]),  # a tie: the earliest window's
        ([["财经"], ["体育"], ["体育"], ["财经"]], ["财经"]),
        ([[], ["体育"], []], ["体育"]),  # windows naming none abstain
        ([[], []], []),
        ([["体育", "财经"], ["财经"]], ["体育"]),  # a window votes for its first label
    ],
)
def test_single_label_is_the_windows_majority_vote(
    named: list[list[str]], label: list[str]
) -> None:
    assert vote_label(named) == label


def test_multi_label_is_the_union_in_the_order_first_named() -> None:
    assert union_labels([["体育", "财经"], ["娱乐", "体育"], []]) == ["体育", "财经", "娱乐"]
    assert union_labels([["财经", "体育"]]) == ["财经", "体育"]
    assert union_labels([[], []]) == []
