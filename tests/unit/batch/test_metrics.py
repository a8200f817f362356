"""eval's metrics: classification equal to scikit-learn's on the same rows, extraction by hand."""

from __future__ import annotations

from typing import Any

import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)
from sklearn.preprocessing import MultiLabelBinarizer

from serving.batch.metrics import (
    NO_LABEL,
    classification_metrics,
    extraction_metrics,
    flatten_fields,
    spans_overlap,
    wrong_fields,
)

LABELS = ["财经", "体育", "娱乐", "科技"]
GOLD = ["财经", "体育", "体育", "娱乐", "科技", "财经", "体育", "娱乐", "财经", "科技"]
PREDICTED: list[str | None] = [
    "财经",
    "体育",
    "财经",
    None,
    "科技",
    "娱乐",
    "体育",
    "娱乐",
    None,
    "体育",
]


def _rows(values: list[Any]) -> list[list[str]]:
    return [[v] if v else [] for v in values]


def test_single_label_metrics_are_scikit_learns() -> None:
    got = classification_metrics(_rows(GOLD), _rows(PREDICTED), LABELS, multi_label=False)
    y_pred = [p or NO_LABEL for p in PREDICTED]
    assert got["accuracy"] == pytest.approx(accuracy_score(GOLD, y_pred))
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(
            GOLD, y_pred, labels=LABELS, average=average, zero_division=0
        )
        assert [got[average][k] for k in ("precision", "recall", "f1")] == pytest.approx([p, r, f])
    p, r, f, support = precision_recall_fscore_support(GOLD, y_pred, labels=LABELS, zero_division=0)
    rows = got["labels"]
    assert [row["label"] for row in rows] == LABELS
    assert [row["precision"] for row in rows] == pytest.approx(list(p))
    assert [row["recall"] for row in rows] == pytest.approx(list(r))
    assert [row["f1"] for row in rows] == pytest.approx(list(f))
    assert [row["support"] for row in rows] == list(support)
    expected = confusion_matrix(GOLD, y_pred, labels=[*LABELS, NO_LABEL])[: len(LABELS)]
    assert got["confusion"]["matrix"] == expected.tolist()
    assert got["confusion"]["predicted"] == [*LABELS, NO_LABEL]
    # No label named is wrong, and counts against recall only: micro P != R here.
    assert got["micro"]["precision"] != got["micro"]["recall"]


def test_a_label_outside_the_set_is_scored_after_it() -> None:
    got = classification_metrics([["a"], ["b"]], [["a"], ["z"]], ["b", "a"], multi_label=False)
    assert [row["label"] for row in got["labels"]] == ["b", "a", "z"]
    assert got["confusion"]["matrix"] == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]


MULTI_GOLD = [["财经"], ["体育", "娱乐"], [], ["科技", "财经"], ["娱乐"], ["体育"]]
MULTI_PRED = [["财经", "科技"], ["体育"], ["娱乐"], ["科技", "财经"], [], ["体育", "财经"]]


def test_multi_label_metrics_are_scikit_learns_per_label() -> None:
    got = classification_metrics(MULTI_GOLD, MULTI_PRED, LABELS, multi_label=True)
    binarizer = MultiLabelBinarizer(classes=LABELS)
    y_true, y_pred = binarizer.fit_transform(MULTI_GOLD), binarizer.transform(MULTI_PRED)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        assert [got[average][k] for k in ("precision", "recall", "f1")] == pytest.approx([p, r, f])
    *_, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    assert [row["support"] for row in got["labels"]] == list(support)
    matrices = multilabel_confusion_matrix(y_true, y_pred)
    assert got["confusion"]["per_label"] == {
        label: matrix.tolist() for label, matrix in zip(LABELS, matrices, strict=True)
    }


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("北京", "北京市", True),  # 2 of 3
        ("张三", " 张三 ", True),
        ("北京市海淀区", "海淀", False),  # 2 of 6
        ("阿里巴巴集团", "阿里巴巴", True),  # 4 of 6
        ("abcd", "cdef", True),  # 2 of 4
        ("abcde", "defgh", False),  # 2 of 5
        ("", "", False),
        ("x", " ", False),
    ],
)
def test_overlap_is_a_shared_substring_half_the_longer_span(a: str, b: str, expected: bool) -> None:
    assert spans_overlap(a, b) is expected
    assert spans_overlap(b, a) is expected


def test_extraction_precision_recall_f1_by_hand() -> None:
    gold = [
        {"人物": ["张三", "李四"], "地点": ["北京市"]},
        {"人物": ["王五"], "地点": []},
        {"人物": [], "地点": ["上海"]},
    ]
    predicted = [
        {"人物": ["张三", "李四四"], "地点": ["北京"]},
        {"人物": ["王五", "赵六"], "地点": ["杭州"]},
        {"人物": [], "地点": []},
    ]
    got = extraction_metrics(gold, predicted)
    assert got["fields"] == ["人物", "地点"]
    # exact: 人物 2 of 4 predicted, 2 of 3 gold; 地点 0 of 2 predicted, 0 of 2 gold.
    person, place = got["exact"]["per_field"]
    assert (person["matched"], person["predicted"], person["gold"]) == (2, 4, 3)
    assert (person["precision"], person["recall"]) == pytest.approx((2 / 4, 2 / 3))
    assert person["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (place["precision"], place["recall"], place["f1"]) == (0, 0, 0)
    assert got["exact"]["micro"]["precision"] == pytest.approx(2 / 6)
    assert got["exact"]["micro"]["recall"] == pytest.approx(2 / 5)
    assert got["exact"]["macro"]["precision"] == pytest.approx((2 / 4 + 0) / 2)
    # overlap: 李四四 ~ 李四 (2 of 3) and 北京 ~ 北京市 match too.
    person, place = got["overlap"]["per_field"]
    assert (person["matched"], place["matched"]) == (3, 1)
    assert (place["precision"], place["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert got["overlap"]["micro"]["precision"] == pytest.approx(4 / 6)
    assert got["overlap"]["micro"]["recall"] == pytest.approx(4 / 5)
    assert got["overlap"]["macro"]["recall"] == pytest.approx((3 / 3 + 1 / 2) / 2)


def test_each_span_matches_at_most_one_and_the_most_matches_are_found() -> None:
    got = extraction_metrics([{"地": ["北京市", "北京"]}], [{"地": ["北京市", "北京", "北京"]}])
    assert got["exact"]["per_field"][0]["matched"] == 2
    # Greedy would pair 北京市 with 北京 and leave 北京 no partner; the best pairs both.
    got = extraction_metrics([{"地": ["北京", "北京市海淀"]}], [{"地": ["北京市", "北京"]}])
    assert got["overlap"]["per_field"][0]["matched"] == 2


def test_fields_with_no_span_anywhere_are_not_averaged() -> None:
    got = extraction_metrics([{"a": ["x"], "b": []}], [{"a": ["x"], "b": [" "]}])
    assert got["fields"] == ["a"]
    assert got["exact"]["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_a_wrong_row_names_its_fields() -> None:
    assert wrong_fields({"a": ["x"], "b": ["y"]}, {"a": [" x "], "b": ["z"], "c": []}) == ["b"]
    assert wrong_fields({"a": ["x", "x"]}, {"a": ["x"]}) == ["a"]


def test_nested_fields_are_scored_by_path_and_a_child_only_under_its_parent() -> None:
    gold = {"人物": [{"text": "张三", "fields": {"职位": ["技术总监"]}}, "李四"]}
    predicted = {
        "人物": [
            {"text": "张三丰", "fields": {"职位": ["技术总监"]}},  # the parent overlaps
            {"text": "李四", "fields": {"职位": ["技术总监"], "公司": None}},  # wrong parent
        ]
    }
    flat_gold, flat_predicted = flatten_fields(gold), flatten_fields(predicted)
    assert list(flat_gold) == ["人物", "人物.职位"]
    assert list(flat_predicted) == ["人物", "人物.职位", "人物.公司"]
    scores = extraction_metrics([flat_gold], [flat_predicted])
    assert scores["fields"] == ["人物", "人物.职位"]
    per_field = {m: [(r["matched"], r["predicted"], r["gold"]) for r in scores[m]["per_field"]]
                 for m in ("exact", "overlap")}  # fmt: skip
    assert per_field == {"exact": [(1, 2, 2), (0, 2, 1)], "overlap": [(2, 2, 2), (1, 2, 1)]}
    assert wrong_fields(flat_gold, flat_predicted) == ["人物", "人物.职位"]
