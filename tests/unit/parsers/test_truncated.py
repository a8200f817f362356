"""Cut-short generations (``complete=False``): their unfinished tail is never an answer."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from parsers import (
    Extraction,
    Span,
    parse_classification,
    parse_extraction,
    parse_extraction_detailed,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
ZH_TEXT = "张三和李四昨天在北京参加了阿里巴巴的发布会。张三很高兴。"
ZS_1, ZS_2 = Span("张三", 0, 2), Span("张三", 22, 24)

NEWS = ["体育", "财经", "娱乐"]
ARTS = ["文化", "文化、艺术", "体育"]
PLACES = ["Paris, France", "Paris", "Rome"]

# Strings the generation clean-up treats specially: kept out of shaped generations so that
# the unfinished line is all that differs between the two parses compared below.
MARKERS = ("</s>", "<s>", "<pad>", "<unk>", "[GEN]")
SENTINEL = "◆◆"
words = st.sampled_from(["张三", "北京", "人名", "地点", "Paris", "None", " ", "，", "\t", ":"])
fragment = st.one_of(st.text(max_size=6), words).filter(lambda s: "◆" not in s)
phrase = st.lists(fragment, max_size=4).map("".join)


def single_line_only(value: str) -> bool:
    """Whether ``value`` holds no line break (as ``str.splitlines`` sees them)."""
    return value.splitlines() in ([], [value])


single_line = phrase.filter(single_line_only)
labels = st.lists(st.one_of(single_line.filter(str.strip), words), min_size=1, max_size=5)


@st.composite
def shaped_lines(draw: st.DrawFn, requested: list[str], text: str) -> list[str]:
    """``label: value`` lines, without line breaks, with values often copied from the text."""
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.one_of(st.sampled_from(requested), single_line))
        colon = draw(st.sampled_from([":", "：", " : ", ": "]))
        start = draw(st.integers(0, len(text)))
        copied = text[start : draw(st.integers(start, len(text)))]
        value = draw(st.one_of(single_line, st.just(copied).filter(single_line_only)))
        lines.append(name + colon + value)
    return lines


word = st.text("甲乙丙丁文化艺术", min_size=1, max_size=3)
inner = st.sampled_from(["、", ";", "；", "\t", ","])
class_label = st.builds(
    lambda first, rest: first + "".join(sep + w for sep, w in rest),
    word,
    st.lists(st.tuples(inner, word), max_size=2),
)


@pytest.mark.parametrize(
    ("generated", "labels", "expected"),
    [
        pytest.param("体", NEWS, [], id="prefix-of-label"),
        pytest.param("体育", NEWS, [], id="single-answer-unterminated"),
        pytest.param("体育，", NEWS, ["体育"], id="single-answer-terminated"),
        pytest.param("体育\n", NEWS, ["体育"], id="newline-terminated"),
        pytest.param("体育， ", NEWS, ["体育"], id="space-after-separator"),
        pytest.param("体育，财", NEWS, ["体育"], id="tail-prefix-dropped"),
        pytest.param("体育，财经", NEWS, ["体育"], id="tail-label-dropped"),
        pytest.param("体育，财经，", NEWS, ["体育", "财经"], id="all-terminated"),
        pytest.param("「体育」，娱", NEWS, ["体育"], id="quoted"),
        pytest.param("文化、艺", ARTS, [], id="prefix-of-label-with-separator"),
        pytest.param("文化、艺术", ARTS, [], id="label-with-separator-unterminated"),
        pytest.param("文化、艺术，体", ARTS, ["文化、艺术"], id="label-with-separator-done"),
        pytest.param("文化、科技", ARTS, ["文化"], id="no-label-being-written"),
        pytest.param("Paris, France", PLACES, [], id="comma-label-unterminated"),
        pytest.param("Paris, fr", PLACES, [], id="folded-prefix"),
        pytest.param("Paris, Rome, Fr", [*PLACES, "France"], ["Paris", "Rome"], id="ascii-tail"),
        pytest.param("Positive,", ["positive", "negative"], ["positive"], id="ascii-folded"),
        pytest.param("这篇属于财经类，也涉及体育", NEWS, ["财经"], id="fallback-finished-only"),
        pytest.param("The sentiment is negative", ["negative"], [], id="sentence-unterminated"),
        pytest.param("", NEWS, [], id="empty"),
    ],
)
def test_cut_short_classification_drops_its_tail(
    generated: str, labels: list[str], expected: list[str]
) -> None:
    assert parse_classification(generated, labels, complete=False) == expected


@PROPERTY_SETTINGS
@given(labels=st.lists(class_label, min_size=1, max_size=6, unique=True), data=st.data())
def test_cut_short_classification_reads_only_terminated_labels(
    labels: list[str], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(labels), max_size=4))
    writing = data.draw(st.sampled_from(labels))
    tail = writing[: data.draw(st.integers(0, len(writing)))]
    generated = "".join(name + "，" for name in chosen) + tail
    assert parse_classification(generated, labels, complete=False) == list(dict.fromkeys(chosen))


@PROPERTY_SETTINGS
@given(generated=phrase, requested=labels, complete=st.booleans())
def test_classification_never_raises(generated: str, requested: list[str], complete: bool) -> None:
    result = parse_classification(generated, requested, complete=complete)
    assert set(result) <= set(requested)
    assert len(result) == len(set(result))


ZS = [ZS_1, ZS_2]
BJ = [Span("北京", 8, 10)]


@pytest.mark.parametrize(
    ("generated", "people", "places", "ungrounded"),
    [
        pytest.param("人名: 张三\n地点: 北", ZS, [], {}, id="cut-value"),
        pytest.param("人名: 张三\n地点: 北京", ZS, [], {}, id="cut-line"),
        pytest.param("人名: 张三\n地点: 北京\n", ZS, BJ, {}, id="ends-with-newline"),
        pytest.param("人名: 张三\t王", [], [], {}, id="only-line-cut"),
        pytest.param("人名: 王五\n地点: 上", [], [], {"人名": ["王五"]}, id="cut-not-ungrounded"),
        pytest.param("人名: 张三\n人名: 李", ZS, [], {}, id="earlier-line-same-label"),
        pytest.param("人名: 张三\r\n地点: 北京\r\n", ZS, BJ, {}, id="crlf"),
        pytest.param("地点: 北京\n人名: 张三</s>地点: 上海", [], BJ, {}, id="cut-after-clean-up"),
        pytest.param("", [], [], {}, id="empty"),
    ],
)
def test_cut_short_generation_drops_its_last_line(
    generated: str, people: list[Span], places: list[Span], ungrounded: dict[str, list[str]]
) -> None:
    result = parse_extraction_detailed(generated, ["人名", "地点"], ZH_TEXT, complete=False)
    assert result == Extraction({"人名": people, "地点": places}, ungrounded)


def test_complete_generation_keeps_its_last_line() -> None:
    result = parse_extraction_detailed("人名: 张三\n地点: 北京", ["人名", "地点"], ZH_TEXT)
    assert result.fields == {"人名": ZS, "地点": BJ}


@PROPERTY_SETTINGS
@given(requested=labels, text=phrase, data=st.data())
def test_cut_short_parse_is_the_parse_of_the_finished_lines(
    requested: list[str], text: str, data: st.DataObject
) -> None:
    lines = data.draw(shaped_lines(requested, text))
    finished = "".join(line + data.draw(st.sampled_from(["\n", "\r\n"])) for line in lines)
    tail = data.draw(
        st.one_of(st.just(""), single_line, shaped_lines(requested, text).map("".join))
    )
    generated = finished + tail
    assume(not any(marker in generated for marker in MARKERS))
    cut = parse_extraction_detailed(generated, requested, text, complete=False)
    assert cut == parse_extraction_detailed(finished, requested, text)
    assert parse_extraction(generated, requested, text, complete=False) == cut.fields


@PROPERTY_SETTINGS
@given(requested=labels, text=phrase, data=st.data())
def test_cut_short_last_line_gives_no_span_and_no_ungrounded_value(
    requested: list[str], text: str, data: st.DataObject
) -> None:
    lines = data.draw(shaped_lines(requested, text))
    label = data.draw(st.sampled_from(requested))
    text += SENTINEL
    generated = "\n".join([*lines, f"{label}: {SENTINEL}"])
    result = parse_extraction_detailed(generated, requested, text, complete=False)
    sentinel_at = len(text) - len(SENTINEL)
    for spans in result.fields.values():
        assert all(span.end <= sentinel_at for span in spans)
    assert all(SENTINEL not in value for values in result.ungrounded.values() for value in values)


def _check_spans(result: Extraction, text: str) -> None:
    """Spans are slices of the text, sorted, unique per label and nested in no longer span."""
    everywhere = {(s.start, s.end) for spans in result.fields.values() for s in spans}
    for spans in result.fields.values():
        offsets = [(span.start, span.end) for span in spans]
        assert offsets == sorted(set(offsets))
        for span in spans:
            assert span.text
            assert text[span.start : span.end] == span.text
            assert not any(
                start <= span.start and span.end <= end and end - start > len(span.text)
                for start, end in everywhere
            )


@PROPERTY_SETTINGS
@given(generated=phrase, requested=labels, text=phrase, complete=st.booleans())
def test_extraction_never_raises_and_spans_are_slices(
    generated: str, requested: list[str], text: str, complete: bool
) -> None:
    _check_spans(parse_extraction_detailed(generated, requested, text, complete=complete), text)


@PROPERTY_SETTINGS
@given(requested=labels, text=phrase, data=st.data(), complete=st.booleans())
def test_shaped_extraction_spans_are_slices(
    requested: list[str], text: str, data: st.DataObject, complete: bool
) -> None:
    generated = "\n".join(data.draw(shaped_lines(requested, text)))
    _check_spans(parse_extraction_detailed(generated, requested, text, complete=complete), text)
