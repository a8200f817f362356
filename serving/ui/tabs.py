"""The web UI's three tabs: inputs, outputs, examples, and what each button runs.

Every handler awaits ``serving.ui.backend.Backend`` and shows the answer with
``serving.ui.view``; a ``PageError`` fills the tab's error box with the API's sentence and
clears the results.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from serving.ui.backend import Backend, PageError
from serving.ui.view import (
    SPAN_COLUMNS,
    flattened,
    highlighted,
    label_value,
    length_note,
    named_labels,
    span_rows,
    truncation_note,
)

__all__ = ["classify_tab", "extract_tab", "prompt_tab"]

DEFAULT_PROMPT_TOKENS = 64
CLASSIFY_EXAMPLES = [
    ["今天上证指数收涨1.2%，券商板块领涨，成交额突破万亿。", "财经,体育，娱乐,科技", False, False],
    [
        "The phone has a brilliant camera, but the battery dies by noon.",
        "正面,负面,中性",
        False,
        True,
    ],
    ["这部电影剧情紧凑，演员表演出色，只是配乐有些吵。", "剧情,表演,配乐,特效", True, False],
    ["Apple unveiled a faster laptop chip at its event.", "business,sports,tech", False, True],
]
EXTRACT_EXAMPLES = [
    ["张三于2023年5月1日在北京加入阿里巴巴，担任技术总监。", "人物,地点,组织机构,时间,职位"],
    ["患者男，65岁，因胸痛3小时入院，既往有高血压病史。", "年龄,症状,持续时间,疾病"],
    ["Marie Curie won the Nobel Prize in Physics in 1903 in Stockholm.", "person, award, date"],
]
# What /v1/extract and /v1/classify send for these texts and labels, as their answers show it
# with return_prompts (tests/api/test_ui_access.py checks they still do): the page builds none.
PROMPT_EXAMPLES = [
    ["输入: 张三于2023年5月1日在北京加入阿里巴巴。\n抽取: 人物，地点，机构\n输出: [GEN]"],
    ["输入: 今天上证指数收涨1.2%，券商板块领涨。\n分类: 财经，体育，娱乐\n输出: [GEN]"],
]


def _error(message: str) -> Any:
    return gr.update(value=f'<div class="seqgpt-error" role="alert">{html.escape(message)}</div>')


def _ok() -> Any:
    return gr.update(value="")


def _text_and_labels(tab: str, name: str, placeholder: str) -> tuple[Any, Any]:
    """A tab's text box and its comma-separated labels box."""
    text = gr.Textbox(label="文本 Text", lines=4, elem_id=f"{tab}-text")
    labels = gr.Textbox(
        label=f"{name}（逗号分隔 comma-separated: , or ，）",
        placeholder=placeholder,
        elem_id=f"{tab}-labels",
    )
    return text, labels


def _tail(tab: str, table_label: str | None, body_label: str) -> list[Any]:
    """The end of a tab's results column: the span table (if any), the note and the JSON."""
    table = (
        [
            gr.Dataframe(
                headers=SPAN_COLUMNS, label=table_label, interactive=False, elem_id=f"{tab}-table"
            )
        ]
        if table_label is not None
        else []
    )
    note = gr.Markdown(elem_id=f"{tab}-note")
    return [*table, note, gr.JSON(label=body_label, open=False, elem_id=f"{tab}-json")]


def _wire(
    tab: str,
    button: Any,
    run: Any,
    io: tuple[list[Any], list[Any]],
    examples: list[list[Any]],
    *,
    run_examples: bool = True,
) -> None:
    """The button runs ``run`` on ``io`` (inputs, outputs); an example, clicked, runs it too or
    (``run_examples=False``) only fills in the inputs it has."""
    inputs, outputs = io
    button.click(run, inputs, outputs, api_visibility="private")
    click = "点击运行 click to run" if run_examples else "点击填入 click to fill in"
    runs = {"outputs": outputs, "fn": run, "run_on_click": True, "cache_examples": False}
    gr.Examples(
        examples,
        inputs[: len(examples[0])],
        label=f"示例 Examples（{click}）",
        api_visibility="private",
        elem_id=f"{tab}-examples",
        **(runs if run_examples else {}),
    )


def classify_tab(backend: Backend | None) -> None:
    """文本分类: text, labels, multi-label, scores; the chosen label (with every label's score
    when asked, as gr.Label's bars), every named label, the answer."""
    with gr.Row():
        with gr.Column():
            text, labels = _text_and_labels("classify", "标签 Labels", "财经,体育，娱乐")
            multi = gr.Checkbox(label="多标签 Multi-label", elem_id="classify-multi")
            scores = gr.Checkbox(
                label="分数 Scores（单标签 single-label）", elem_id="classify-scores"
            )
            button = gr.Button("分类 Classify", variant="primary", elem_id="classify-run")
        with gr.Column():
            error = gr.HTML(elem_id="classify-error")
            # A gr.Label: the chosen label, or {label: score} drawn as bars with scores.
            chosen = gr.Label(label="结果 Result", elem_id="classify-result")
            named = gr.Textbox(
                label="命名的标签 Named labels", interactive=False, elem_id="classify-named"
            )
            note, body = _tail("classify", None, "API 响应 Response")

    async def run(text_in: str, labels_in: str, multi_in: bool, scores_in: bool) -> tuple[Any, ...]:
        try:
            answer = await _backend(backend).classify(text_in, labels_in, multi_in, scores_in)
        except PageError as exc:
            return _error(str(exc)), None, "", "", None
        return (
            _ok(),
            label_value(answer),
            named_labels(answer),
            truncation_note(answer.truncated),
            answer.model_dump(mode="json", exclude_unset=True),
        )

    io = ([text, labels, multi, scores], [error, chosen, named, note, body])
    _wire("classify", button, run, io, CLASSIFY_EXAMPLES)


def extract_tab(backend: Backend | None) -> None:
    """信息抽取: text and fields; the text with its spans marked, a table of them, the answer."""
    with gr.Row():
        with gr.Column():
            text, labels = _text_and_labels("extract", "字段 Fields", "人物,地点，时间")
            schema = gr.Textbox(
                label="Schema（JSON，可选 optional：填写后代替字段 used instead of the fields）",
                placeholder='{"人物": ["职位", "就职于"]}',
                lines=3,
                elem_id="extract-schema",
            )
            button = gr.Button("抽取 Extract", variant="primary", elem_id="extract-run")
        with gr.Column():
            error = gr.HTML(elem_id="extract-error")
            spans = gr.HighlightedText(
                label="文本中的片段 Spans in the text", show_legend=True, elem_id="extract-spans"
            )
            table, note, body = _tail("extract", "字段 Fields", "API 响应 Response")

    async def run(text_in: str, labels_in: str, schema_in: str = "") -> tuple[Any, ...]:
        try:
            answer = await _backend(backend).extract(text_in, labels_in, schema_in)
        except PageError as exc:
            return _error(str(exc)), None, None, "", None
        fields = flattened(answer.fields)  # a schema's children: one row per path
        return (
            _ok(),
            highlighted(text_in, fields),  # offsets are into the text as sent
            span_rows(fields),
            truncation_note(answer.truncated),
            answer.model_dump(mode="json", exclude_unset=True),
        )

    io = ([text, labels, schema], [error, spans, table, note, body])
    _wire("extract", button, run, io, EXTRACT_EXAMPLES)


def prompt_tab(backend: Backend | None, max_tokens: int) -> None:
    """自由Prompt: a raw SeqGPT prompt, greedy, up to ``max_tokens``; the generation, and its
    fields when the prompt is an extraction."""
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(
                label="提示 Prompt（SeqGPT 原始格式 raw SeqGPT format）",
                lines=6,
                placeholder="输入: …\n抽取: 人物，地点\n输出: [GEN]",
                elem_id="prompt-text",
            )
            budget = gr.Slider(
                1,
                max_tokens,
                value=min(DEFAULT_PROMPT_TOKENS, max_tokens),
                step=1,
                label="最大生成长度 Max new tokens（贪心解码 greedy）",
                elem_id="prompt-max-tokens",
            )
            button = gr.Button("生成 Generate", variant="primary", elem_id="prompt-run")
        with gr.Column():
            error = gr.HTML(elem_id="prompt-error")
            generation = gr.Textbox(
                label="生成 Generation", lines=6, interactive=False, elem_id="prompt-generation"
            )
            fields = "抽取结果 Fields（当生成可按抽取格式解析 when it parses as extraction）"
            table, note, body = _tail("prompt", fields, "详情 Details")

    async def run(prompt_in: str, tokens: float) -> tuple[Any, ...]:
        try:
            completion = await _backend(backend).complete(prompt_in, int(tokens))
        except PageError as exc:
            return _error(str(exc)), "", None, "", None
        answer = completion.fields  # the generation as /v1/extract reads it, if an extraction
        rows = None if answer is None else span_rows(flattened(answer.fields))
        details = {
            "finish_reason": completion.finish_reason,
            "truncated": completion.truncated,
            "usage": completion.usage.model_dump(),
        }
        return _ok(), completion.text, rows, length_note(completion.truncated), details

    io = ([prompt, budget], [error, generation, table, note, body])
    _wire("prompt", button, run, io, PROMPT_EXAMPLES, run_examples=False)


def _backend(backend: Backend | None) -> Backend:
    if backend is None:
        raise PageError("This page is not connected to a server.")
    return backend
