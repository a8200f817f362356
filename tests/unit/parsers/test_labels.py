"""Classification matches requested labels whole, even labels holding a piece separator."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import parse_classification

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)
ARTS = ["文化、艺术", "体育"]
ARTS_AND_ART = ["文化、艺术", "艺术", "体育"]


@pytest.mark.parametrize(
    ("generated", "labels", "expected"),
    [
        pytest.param("文化、艺术，体育", ARTS, ["文化、艺术", "体育"], id="comma-after-label"),
        pytest.param("文化、艺术，体育", ARTS_AND_ART, ["文化、艺术", "体育"], id="no-inner"),
        pytest.param("体育，文化、艺术", ARTS_AND_ART, ["体育", "文化、艺术"], id="label-last"),
        pytest.param("文化、艺术", ARTS_AND_ART, ["文化、艺术"], id="whole-answer"),
        pytest.param("艺术，体育", ARTS_AND_ART, ["艺术", "体育"], id="inner-label-alone"),
        pytest.param("「文化、艺术」，体育", ARTS_AND_ART, ["文化、艺术", "体育"], id="quoted"),
        pytest.param("文化、艺术\n体育", ARTS, ["文化、艺术", "体育"], id="newline"),
        pytest.param("文化、艺术、体育", ARTS, ["文化、艺术", "体育"], id="same-separator"),
        pytest.param("文化、艺术，，体育", ARTS, ["文化、艺术", "体育"], id="separator-run"),
        pytest.param("A;B, C", ["A;B", "B", "C"], ["A;B", "C"], id="ascii-semicolon"),
        pytest.param("a;b, c", ["A;B", "C"], ["A;B", "C"], id="ascii-case-folded"),
        pytest.param("甲；乙，丙", ["甲；乙", "乙", "丙"], ["甲；乙", "丙"], id="full-semicolon"),
        pytest.param("甲\t乙，丙", ["甲\t乙", "乙", "丙"], ["甲\t乙", "丙"], id="tab"),
        pytest.param("甲、乙、丙", ["甲、乙", "乙、丙"], ["甲、乙"], id="leftmost-wins"),
        pytest.param("甲、乙、丙", ["甲", "乙、丙"], ["甲", "乙、丙"], id="later-long-label"),
        pytest.param("甲、乙、丙", ["甲", "甲、乙、丙"], ["甲、乙、丙"], id="longest-at-start"),
        pytest.param("甲、乙", ["甲", "乙", "甲、乙"], ["甲、乙"], id="longest-over-pieces"),
        pytest.param("文化、科技，体育", ARTS_AND_ART, ["体育"], id="unmatched-piece"),
        pytest.param("文化、艺术类", ARTS_AND_ART, ["文化、艺术"], id="fallback-inside"),
    ],
)
def test_labels_are_matched_whole(generated: str, labels: list[str], expected: list[str]) -> None:
    assert parse_classification(generated, labels) == expected


# Labels built from words joined by the separators a label may hold; answers join chosen labels
# with "，", which no label holds, so reading them back is never ambiguous.
word = st.text("甲乙丙丁文化艺术", min_size=1, max_size=3)
inner = st.sampled_from(["、", ";", "；", "\t", ","])
label = st.builds(
    lambda first, rest: first + "".join(sep + w for sep, w in rest),
    word,
    st.lists(st.tuples(inner, word), max_size=2),
)


@PROPERTY_SETTINGS
@given(labels=st.lists(label, min_size=1, max_size=6, unique=True), data=st.data())
def test_generated_labels_are_read_back_in_order(labels: list[str], data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(labels), min_size=1, max_size=4))
    answer = "，".join(chosen)
    assert parse_classification(answer, labels) == list(dict.fromkeys(chosen))
