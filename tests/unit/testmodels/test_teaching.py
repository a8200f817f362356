"""Taught test checkpoints: lessons become the product's prompts and SeqGPT's answer format (the
training itself runs in the e2e schema test and the schema benchmark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.testmodels.teaching import TeachingError, answer_text, read_lessons


def test_answers_are_seqgpt_lines_with_tabs_and_none() -> None:
    fields = {"人物": ["张三", "李四"], "公司": []}
    assert answer_text(fields) == "人物: 张三\t李四\n公司: None"


def test_lessons_use_the_products_extraction_prompt(tmp_path: Path) -> None:
    path = tmp_path / "lessons.jsonl"
    path.write_text('{"text": " 张三来了 ", "fields": {"人物": ["张三"]}}\n\n', encoding="utf-8")
    assert read_lessons(path) == [("输入: 张三来了\n抽取: 人物\n输出: [GEN]", "人物: 张三")]


SEVEN_FIELDS = '{"text": "t", "fields": {' + ", ".join(f'"f{i}": []' for i in range(7)) + "}}"


@pytest.mark.parametrize(
    "line",
    [
        "[]",
        '{"text": "t"}',
        '{"text": "t", "fields": {}}',
        '{"text": "t", "fields": {"a": 1}}',
        SEVEN_FIELDS,  # more than one prompt's labels
    ],
)
def test_a_bad_lesson_is_named_by_its_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "lessons.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(TeachingError, match=r"line 1: not a lesson"):
        read_lessons(path)
