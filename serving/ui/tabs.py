"""The web UI's three tabs: inputs, outputs, examples, and what each button runs.

Every handler awaits ``serving.ui.backend.Backend`` and shows the answer with
``serving.ui.view``; a ``PageError`` fills the tab's error box with the API's sentence and
clears the results.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from prompts import build_classify_prompt, build_extract_prompts
from serving.ui.backend import Backend, PageError
from serving.ui.view import (
    SPAN_COLUMNS,
    highlighted,
    label_value,
    length_note,
    named_labels,
    prompt_fields,
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
PROMPT_EXAMPLES = [
    [build_extract_prompts("张三于2023年5月1日在北京加入阿里巴巴。", ["人物", "地点", "机构"])[0]],
    [build_classify_prompt("今天上证指数收涨1.2%，券商板块领涨。", ["财经", "体育", "娱乐"])],
]


def _error(message: str) -> Any:
    return gr.update(value=f'<div class="seqgpt-error" role="alert">{html.escape(message)}</div>')


def _ok() -> Any:
    return gr.update(value="")


def classify_tab(backend: Backend | None) -> None:
    """文本分类: text, labels, multi-label, scores; the chosen label (with every label's score
    when asked, as gr.Label's bars), every named label, the answer."""
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="文本 Text", lines=4, elem_id="classify-text")
            labels = gr.Textbox(
                label="标签 Labels（逗号分隔 comma-separated: , or ，）",
                placeholder="财经,体育，娱乐",
                elem_id="classify-labels",
            )
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
            note = gr.Markdown(elem_id="classify-note")
            body = gr.JSON(label="API 响应 Response", open=False, elem_id="classify-json")

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

    outputs = [error, chosen, named, note, body]
    button.click(run, [text, labels, multi, scores], outputs, api_visibility="private")
    gr.Examples(
        CLASSIFY_EXAMPLES,
        [text, labels, multi, scores],
        outputs,
        fn=run,
        run_on_click=True,
        cache_examples=False,
        label="示例 Examples（点击运行 click to run）",
        api_visibility="private",
        elem_id="classify-examples",
    )


def extract_tab(backend: Backend | None) -> None:
    """信息抽取: text and fields; the text with its spans marked, a table of them, the answer."""
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="文本 Text", lines=4, elem_id="extract-text")
            labels = gr.Textbox(
                label="字段 Fields（逗号分隔 comma-separated: , or ，）",
                placeholder="人物,地点，时间",
                elem_id="extract-labels",
            )
            button = gr.Button("抽取 Extract", variant="primary", elem_id="extract-run")
        with gr.Column():
            error = gr.HTML(elem_id="extract-error")
            spans = gr.HighlightedText(
                label="文本中的片段 Spans in the text", show_legend=True, elem_id="extract-spans"
            )
            table = gr.Dataframe(
                headers=SPAN_COLUMNS,
                label="字段 Fields",
                interactive=False,
                elem_id="extract-table",
            )
            note = gr.Markdown(elem_id="extract-note")
            body = gr.JSON(label="API 响应 Response", open=False, elem_id="extract-json")

    async def run(text_in: str, labels_in: str) -> tuple[Any, ...]:
        try:
            answer = await _backend(backend).extract(text_in, labels_in)
        except PageError as exc:
            return _error(str(exc)), None, None, "", None
        return (
            _ok(),
            highlighted(text_in, answer.fields),  # offsets are into the text as sent
            span_rows(answer.fields),
            truncation_note(answer.truncated),
            answer.model_dump(mode="json", exclude_unset=True),
        )

    outputs = [error, spans, table, note, body]
    button.click(run, [text, labels], outputs, api_visibility="private")
    gr.Examples(
        EXTRACT_EXAMPLES,
        [text, labels],
        outputs,
        fn=run,
        run_on_click=True,
        cache_examples=False,
        label="示例 Examples（点击运行 click to run）",
        api_visibility="private",
        elem_id="extract-examples",
    )


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
            table = gr.Dataframe(
                headers=SPAN_COLUMNS,
                label="抽取结果 Fields（当生成可按抽取格式解析 when it parses as extraction）",
                interactive=False,
                elem_id="prompt-table",
            )
            note = gr.Markdown(elem_id="prompt-note")
            body = gr.JSON(label="详情 Details", open=False, elem_id="prompt-json")

    async def run(prompt_in: str, tokens: float) -> tuple[Any, ...]:
        try:
            completion = await _backend(backend).complete(prompt_in, int(tokens))
        except PageError as exc:
            return _error(str(exc)), "", None, "", None
        rows = prompt_fields(prompt_in, completion.text, completion.truncated)
        details = {
            "finish_reason": completion.finish_reason,
            "truncated": completion.truncated,
            "usage": completion.usage.model_dump(),
        }
        return _ok(), completion.text, rows, length_note(completion.truncated), details

    outputs = [error, generation, table, note, body]
    button.click(run, [prompt, budget], outputs, api_visibility="private")
    gr.Examples(
        PROMPT_EXAMPLES,
        [prompt],
        label="示例 Examples（点击填入 click to fill in）",
        api_visibility="private",
        elem_id="prompt-examples",
    )


def _backend(backend: Backend | None) -> Backend:
    if backend is None:
        raise PageError("This page is not connected to a server.")
    return backend
