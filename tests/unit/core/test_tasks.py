"""The task registry: which tasks exist, and how each plans its prompts."""

from __future__ import annotations

import pytest

from parsers import Extraction
from prompts import LabelError, build_classify_prompt, build_extract_prompts, chunk_labels
from serving.core.tasks import TASKS, PromptPlan, read_completion, read_extract_prompt

THIRTEEN = [f"字段{i}" for i in range(13)]


def _asked(plan: PromptPlan) -> list[str]:
    """The labels the prompt itself names, read back from its task line."""
    task_line = plan.prompt.split("\n")[-2]
    return task_line.split(": ", 1)[1].split("，")


def test_registry_has_exactly_the_tasks() -> None:
    assert set(TASKS) == {"classify", "classify_multi", "extract"}
    assert all(spec.name == name for name, spec in TASKS.items())


@pytest.mark.parametrize(
    ("task", "constrained"),
    [("classify", True), ("classify_multi", False), ("extract", False)],
)
def test_decoding_policy(task: str, constrained: bool) -> None:
    assert TASKS[task].decoding.constrain_to_labels is constrained


@pytest.mark.parametrize("task", ["classify", "classify_multi"])
def test_classify_plans_one_prompt_with_every_label(task: str) -> None:
    labels = ["体育", "财经", "娱乐", "科技", "教育", "军事", "汽车"]
    plans = TASKS[task].plan(" 国足今晚出战 ", labels, 6)
    assert plans == [PromptPlan(build_classify_prompt("国足今晚出战", labels), labels)]
    assert _asked(plans[0]) == labels


def test_extract_plans_thirteen_labels_into_three_prompts() -> None:
    plans = TASKS["extract"].plan("张三在北京", THIRTEEN, 6)
    assert [plan.labels for plan in plans] == chunk_labels(THIRTEEN)
    assert [len(plan.labels) for plan in plans] == [5, 4, 4]
    assert [plan.prompt for plan in plans] == build_extract_prompts("张三在北京", THIRTEEN)
    assert all(_asked(plan) == plan.labels for plan in plans)


@pytest.mark.parametrize(("chunk_size", "sizes"), [(1, [1] * 13), (4, [4, 3, 3, 3]), (13, [13])])
def test_extract_honours_chunk_size(chunk_size: int, sizes: list[int]) -> None:
    plans = TASKS["extract"].plan("x", THIRTEEN, chunk_size)
    assert [len(plan.labels) for plan in plans] == sizes
    assert [label for plan in plans for label in plan.labels] == THIRTEEN


def test_extract_drops_duplicates_before_chunking() -> None:
    # 7 labels with one repeat are 6 distinct: one prompt, not the two that 7 would need.
    labels = ["人名", "地点", " 人名 ", "时间", "机构", "事件", "金额"]
    plans = TASKS["extract"].plan("x", labels, 6)
    assert [plan.labels for plan in plans] == [["人名", "地点", "时间", "机构", "事件", "金额"]]
    # 13 distinct labels among 16 given: three prompts of 5, 4, 4.
    plans = TASKS["extract"].plan("x", [*THIRTEEN, THIRTEEN[0], THIRTEEN[5], THIRTEEN[12]], 6)
    assert [plan.labels for plan in plans] == chunk_labels(THIRTEEN)


def test_classify_plan_labels_are_the_labels_the_prompt_asks_about() -> None:
    plans = TASKS["classify"].plan("x", ["体育", " 财经", "体育"], 6)
    assert [plan.labels for plan in plans] == [_asked(plan) for plan in plans]


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("labels", [[], ["体育，财经"], ["输出: 体育"], ["体育\n财经"]])
def test_plans_reject_bad_labels(task: str, labels: list[str]) -> None:
    with pytest.raises(LabelError):
        TASKS[task].plan("x", labels, 6)


def test_parsers_are_wired() -> None:
    assert TASKS["classify"].parse("财经", ["体育", "财经"], "x", True) == ["财经"]
    assert TASKS["classify_multi"].parse("体育，财经", ["体育", "财经"], "x", True) == [
        "体育",
        "财经",
    ]
    extraction = TASKS["extract"].parse(
        "人名: 张三\n地点: None", ["人名", "地点"], "张三在北京", True
    )
    assert isinstance(extraction, Extraction)
    assert [span.text for span in extraction.fields["人名"]] == ["张三"]
    assert extraction.fields["地点"] == []


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("输入: 张三在北京\n抽取: 人物，地点\n输出: [GEN]", ("张三在北京", ["人物", "地点"])),
        ("输入：第一\n第二\n抽取：人物, 地点,人物\n输出：", ("第一\n第二", ["人物", "地点"])),
        ("  输入 : 文本 \n 抽取 : 时间 \n", ("文本", ["时间"])),
        ("输入: 文本\n分类: 财经，体育\n输出: [GEN]", None),
        ("抽取: 人物\n输出: [GEN]", None),
        ("输入: \n抽取: 人物", None),
        ("输入: 文本\n抽取: ，\n", None),
        ("just some text", None),
    ],
)  # fmt: skip
def test_a_typed_extraction_prompt_gives_its_text_and_labels(
    prompt: str, expected: tuple[str, list[str]] | None
) -> None:
    assert read_extract_prompt(prompt) == expected


def test_the_extract_tasks_own_prompts_read_back_as_their_text_and_labels() -> None:
    text, labels = "张三于2023年5月1日在北京加入阿里巴巴。", THIRTEEN
    for plan in TASKS["extract"].plan(text, labels, 6):
        assert read_extract_prompt(plan.prompt) == (text, plan.labels)


def test_a_completion_of_an_extraction_prompt_is_read_as_extract_reads_its_own() -> None:
    prompt = "输入: 张三于2023年5月1日在北京加入阿里巴巴。\n抽取: 人物，地点\n输出: [GEN]"
    result = read_completion(prompt, "人物: 张三\n地点: 北京\n", "stop", (20, 8))
    assert result is not None
    assert (result.task, result.windows, result.truncated) == ("extract", 1, False)
    assert (result.prompt_tokens, result.completion_tokens) == (20, 8)
    spans = {
        label: [(s.text, s.start) for s in found] for label, found in result.value.fields.items()
    }
    assert spans == {"人物": [("张三", 0)], "地点": [("北京", 13)]}
    # Cut short: the line being written when the budget ran out is not a field.
    cut = read_completion(prompt, "人物: 张三\n地点: 北", "length")
    assert cut is not None
    assert cut.truncated
    assert {k: [s.text for s in v] for k, v in cut.value.fields.items()} == {
        "人物": ["张三"],
        "地点": [],
    }
    assert read_completion("输入: 文本\n分类: 财经，体育\n输出: [GEN]", "财经", "stop") is None
