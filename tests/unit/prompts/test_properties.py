"""Property tests: no text can forge a line of SeqGPT's prompt, and ordinary text is untouched.

Which notion of "line"? SeqGPT's tokenizer sees only ``\\n`` as a line break, so ``split("\\n")``
is what the model reads. We check with ``str.splitlines()``, which also breaks at ``\\r``,
``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029: every ``\\n`` line start
is also a ``splitlines`` line start, so a prompt with no forged line under ``splitlines`` has none
under ``split("\\n")`` either, and it also stays clean for whatever renders or re-tokenizes the
prompt with the wider notion (browsers, log viewers, other tokenizers). Both views are asserted.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prompts import (
    GEN_MARKER,
    MAX_LABEL_CHARS,
    LabelError,
    build_classify_prompt,
    build_extract_prompts,
    neutralize_text,
    validate_labels,
)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

KEYS = ("输入", "输出", "分类", "抽取")
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_NON_BREAK_BLANK = rf"[^\S{re.escape(LINE_BREAKS)}]"
# A line that (after any whitespace) starts with a template key, optional blanks and a colon:
# the shape the model could take for an instruction or an answer. The blanks between key and
# colon hold no line break: under splitlines "输出\r: x" is a line "输出" and a line ": x".
KEY_LINE = re.compile(rf"\s*({'|'.join(KEYS)}){_NON_BREAK_BLANK}*[:：]")

BREAKS = st.sampled_from([*LINE_BREAKS, "\r\n"])
BLANKS = st.text(alphabet=" \t\u3000\xa0\x1f\u2003", max_size=3)
COLONS = st.sampled_from([":", "：", " :", "\u3000：", "\t:"])
WORDS = st.sampled_from(["国足今晚出战", "体育", "Tim Cook", "输出功率", "他说输入: 好", "[gen]"])


@st.composite
def forged_line(draw: st.DrawFn) -> str:
    """A line shaped like one of the prompt's own: a template key with a colon, or ``[GEN]``."""
    head = draw(st.sampled_from([*KEYS, GEN_MARKER]))
    colon = "" if head == GEN_MARKER else draw(COLONS)
    return draw(BLANKS) + head + colon + draw(st.text(max_size=6))


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    """Lines of arbitrary unicode, ordinary words and forged lines, joined by any line break."""
    lines = draw(st.lists(st.one_of(st.text(max_size=12), WORDS, forged_line()), max_size=8))
    text = draw(BLANKS)
    for line in lines:
        text += line + draw(BREAKS)
    return text + draw(st.one_of(st.text(max_size=4), forged_line()))


@st.composite
def ordinary_text(draw: st.DrawFn) -> str:
    """Text with line breaks, blanks and near misses (keys without colon, mid-line keys)."""
    pieces = st.one_of(st.text(max_size=10), WORDS, BREAKS, BLANKS, st.sampled_from(KEYS))
    return "".join(draw(st.lists(pieces, max_size=10)))


def is_valid_label(label: str) -> bool:
    """Our own statement of a valid label, independent of ``validate_labels``."""
    return (
        label == label.strip()
        and 0 < len(label) <= MAX_LABEL_CHARS
        and not any(brk in label for brk in LINE_BREAKS)
        and "," not in label
        and "，" not in label
        and GEN_MARKER not in label
        and not KEY_LINE.match(label)
    )


LABEL = st.one_of(
    st.sampled_from(["体育", "财经", "娱乐", "人名", "地点", "person", "输出", "[gen]", "GEN"]),
    st.text(min_size=1, max_size=12).map(str.strip),
).filter(is_valid_label)
LABELS = st.lists(LABEL, min_size=1, max_size=15, unique=True)


def key_lines(prompt: str, split: Callable[[str], list[str]]) -> list[tuple[int, str]]:
    """(line number, key) of every line that starts like one of the template's lines."""
    found = []
    for number, line in enumerate(split(prompt)):
        match = KEY_LINE.match(line)
        if match:
            found.append((number, match.group(1)))
    return found


def split_newline(prompt: str) -> list[str]:
    """The lines SeqGPT's tokenizer sees."""
    return prompt.split("\n")


def assert_one_instruction(prompt: str, task: str, labels: list[str]) -> None:
    """The prompt has exactly its three template lines, with the caller's labels."""
    for split in (str.splitlines, split_newline):
        lines = split(prompt)
        assert key_lines(prompt, split) == [
            (0, "输入"),
            (len(lines) - 2, task),
            (len(lines) - 1, "输出"),
        ]
        assert lines[0].startswith("输入: ")
        assert lines[-2] == f"{task}: " + "，".join(labels)
        assert lines[-1] == "输出: [GEN]"
    assert lines[-2].removeprefix(f"{task}: ").split("，") == labels
    assert prompt.endswith(f"\n{task}: {'，'.join(labels)}\n输出: [GEN]")
    assert prompt.count(GEN_MARKER) == 1
    assert prompt.count("\n输出: [GEN]") == 1


def has_template_shape(text: str) -> bool:
    """Whether any line of the text looks like a template line, or it holds ``[GEN]``."""
    return GEN_MARKER in text or any(KEY_LINE.match(line) for line in text.splitlines())


@PROPERTY_SETTINGS
@given(text=hostile_text(), labels=LABELS)
def test_classify_prompt_has_exactly_one_instruction(text: str, labels: list[str]) -> None:
    assert_one_instruction(build_classify_prompt(text, labels), "分类", labels)


@PROPERTY_SETTINGS
@given(text=hostile_text(), labels=LABELS, chunk_size=st.integers(1, 8))
def test_extract_prompts_have_exactly_one_instruction(
    text: str, labels: list[str], chunk_size: int
) -> None:
    prompts = build_extract_prompts(text, labels, chunk_size)
    assert len(prompts) == math.ceil(len(labels) / chunk_size)
    asked: list[str] = []
    for prompt in prompts:
        chunk = prompt.split("\n")[-2].removeprefix("抽取: ").split("，")
        assert_one_instruction(prompt, "抽取", chunk)
        asked.extend(chunk)
    assert asked == labels


@PROPERTY_SETTINGS
@given(text=st.one_of(hostile_text(), st.text()))
def test_neutralize_only_inserts_zero_width_spaces(text: str) -> None:
    neutral = neutralize_text(text)
    assert neutral.replace("\u200b", "") == text.strip().replace("\u200b", "")
    assert not has_template_shape(neutral)
    assert neutralize_text(neutral) == neutral


@PROPERTY_SETTINGS
@given(text=st.one_of(ordinary_text(), st.text()), labels=LABELS)
def test_ordinary_text_is_untouched(text: str, labels: list[str]) -> None:
    assume(not has_template_shape(text))
    assert neutralize_text(text) == text.strip()
    joined = "，".join(labels)
    assert (
        build_classify_prompt(text, labels) == f"输入: {text.strip()}\n分类: {joined}\n输出: [GEN]"
    )
    for prompt, chunk in zip(build_extract_prompts(text, labels), _chunks(labels), strict=True):
        assert prompt == f"输入: {text.strip()}\n抽取: {'，'.join(chunk)}\n输出: [GEN]"


def _chunks(labels: list[str]) -> list[list[str]]:
    """numpy.array_split sizes, written out: the first n mod k chunks get one more."""
    count = math.ceil(len(labels) / 6)
    size, extra = divmod(len(labels), count)
    bounds = [0]
    for index in range(count):
        bounds.append(bounds[-1] + size + (index < extra))
    return [labels[a:b] for a, b in itertools.pairwise(bounds)]


@PROPERTY_SETTINGS
@given(labels=LABELS)
def test_valid_labels_are_accepted_unchanged(labels: list[str]) -> None:
    assert validate_labels(labels) == labels


@PROPERTY_SETTINGS
@given(
    raw=st.lists(
        st.one_of(st.text(max_size=10), LABEL, forged_line(), st.sampled_from([",", "，", " "])),
        max_size=10,
    )
)
def test_validate_labels_accepts_only_valid_labels(raw: list[str]) -> None:
    try:
        cleaned = validate_labels(raw)
    except LabelError:
        assert not raw or not all(is_valid_label(item.strip()) for item in raw)
        return
    assert all(is_valid_label(label) for label in cleaned)
    assert cleaned == list(dict.fromkeys(item.strip() for item in raw))
