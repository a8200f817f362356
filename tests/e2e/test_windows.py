"""Long documents through the real server: a 100,000-character document is answered in
windows (classify and extract), every window's prompt is listed and is a slice of the original
text, spans are offsets in the original text, and one character more is a 413.

The server is this module's own (the session's has a lower text limit): SEQGPT_MAX_TEXT_CHARS
at its default, vLLM's context at 2048 tokens, extraction budgets of 2 tokens per label (random
weights never end an answer, so each runs to its budget). Its web UI is off, so it also shows
what a server without the UI answers on the UI's paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.server import ServerProcess
from prompts import build_classify_prompt
from serving.core.settings import Settings
from tests.servers import tiny_server

pytestmark = pytest.mark.timeout(900)

API_KEY = "windows-key"
DEFAULT_MAX = Settings.model_fields["max_text_chars"].default
SENTENCES = [
    "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监。",
    "Alice moved from Paris to Berlin in 2021 to lead the data team! ",
    "今天上证指数收涨1.2%，券商板块领涨？",
    "李四在上海参加了一场关于人工智能的会议。\n",
    "The weather was fine. Nobody expected rain on Tuesday. ",
]
WINDOW_TEXT = re.compile(r"\A输入: (.*)\n(?:分类|抽取): .*\n输出: \[GEN\]\Z", re.DOTALL)


def _document(chars: int) -> str:
    """Numbered sentences in Chinese and English, cut to exactly ``chars`` characters."""
    parts, size, number = [], 0, 0
    while size < chars:
        sentence = f"{number}: {SENTENCES[number % len(SENTENCES)]}"
        parts.append(sentence)
        size += len(sentence)
        number += 1
    return "".join(parts)[:chars]


DOCUMENT = _document(DEFAULT_MAX)


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "SEQGPT_SPAN_TOKENS_PER_LABEL": "2",
        "SEQGPT_WINDOW_OVERLAP_TOKENS": "64",
        "SEQGPT_UI": "false",
    }
    log = tmp_path_factory.mktemp("logs") / "windows-server.log"
    args = ("--max-model-len", "2048")
    with tiny_server(tiny_model, api_key=API_KEY, extra_args=args, env=env, log_path=log) as remote:
        yield remote


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        yield client


def _windows_of(text: str, prompts: list[str]) -> list[tuple[int, int]]:
    """Where each prompt's text lies in ``text``: in order, each overlapping or touching the
    one before, together covering it."""
    found: list[tuple[int, int]] = []
    position, reached = 0, 0
    for prompt in prompts:
        match = WINDOW_TEXT.match(prompt)
        assert match is not None, prompt[:80]
        window = match.group(1)
        start = text.find(window, position)
        assert 0 <= start <= reached, (start, reached)
        found.append((start, start + len(window)))
        position, reached = start + 1, start + len(window)
    assert reached == len(text.rstrip())
    return found


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text[:500]
    data: dict[str, Any] = response.json()
    return data


def test_the_document_is_the_default_maximum() -> None:
    assert len(DOCUMENT) == DEFAULT_MAX >= 100_000


def test_a_text_that_fits_is_one_window_with_todays_prompt(http: httpx.Client) -> None:
    labels = ["财经", "体育"]
    body = {"text": "今天上证指数大涨。", "labels": labels, "return_prompts": True}
    data = _post(http, "/v1/classify", body)
    assert data["windows"] == 1
    assert data["prompts"] == [build_classify_prompt("今天上证指数大涨。", labels)]


def test_a_100k_character_document_is_classified_in_windows(http: httpx.Client) -> None:
    labels = ["财经", "体育", "科技"]
    data = _post(http, "/v1/classify", {"text": DOCUMENT, "labels": labels, "return_prompts": True})
    assert data["windows"] > 1
    assert len(data["prompts"]) == len(data["generations"]) == data["windows"]
    _windows_of(DOCUMENT, data["prompts"])
    assert data["label"] in labels
    assert data["labels"] == [data["label"]]
    assert data["usage"]["prompt_tokens"] > len(DOCUMENT) // 4
    assert data["usage"]["total_tokens"] == (
        data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )


def test_a_100k_character_document_is_extracted_in_windows(http: httpx.Client) -> None:
    labels = ["人物", "地点"]
    data = _post(http, "/v1/extract", {"text": DOCUMENT, "labels": labels, "return_prompts": True})
    assert data["windows"] > 1
    assert len(data["prompts"]) == len(data["generations"]) == data["windows"]
    _windows_of(DOCUMENT, data["prompts"])
    assert list(data["fields"]) == labels
    for spans in data["fields"].values():
        for span in spans:
            assert DOCUMENT[span["start"] : span["end"]] == span["text"]
    # Random weights never end an answer: every window stopped at its budget.
    assert data["truncated"] is True
    assert data["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/extract"])
def test_one_character_over_the_default_maximum_is_a_413(http: httpx.Client, path: str) -> None:
    text = DOCUMENT + "。"
    assert len(text) == DEFAULT_MAX + 1
    response = http.post(path, json={"text": text, "labels": ["人物"]})
    assert response.status_code == 413, response.text[:500]
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("RequestTooLargeError", "text", 413)
    assert f"{DEFAULT_MAX + 1} characters" in error["message"]


def test_a_batch_item_over_the_maximum_fails_alone(http: httpx.Client) -> None:
    texts = ["张三在北京。", DOCUMENT[:20_000], DOCUMENT + "。"]
    data = _post(http, "/v1/classify/batch", {"texts": texts, "labels": ["财经", "体育"]})
    short, long, over = data["results"]
    assert short["windows"] == 1
    assert long["windows"] > 1
    assert (over["error"]["code"], over["error"]["param"]) == (413, "text")


def test_scores_over_windows_sum_to_one_and_name_the_label(http: httpx.Client) -> None:
    labels = ["财经", "体育", "科技"]
    body = {"text": DOCUMENT[:20_000], "labels": labels, "scores": True, "return_prompts": True}
    data = _post(http, "/v1/classify", body)
    assert data["windows"] > 1
    assert len(data["prompts"]) == data["windows"]
    assert list(data["scores"]) == labels
    assert sum(data["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert data["label"] == max(labels, key=data["scores"].__getitem__)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_without_the_ui_its_login_is_no_route_and_never_a_500(
    server: ServerProcess, method: str
) -> None:
    """The login form exists only with the UI: anonymous, its path is guarded like any unknown
    one (401); with the key it is a 404. Both in the common error body."""
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {API_KEY}"}, 404)):
        response = httpx.request(method, server.url + "/ui/login", headers=headers, timeout=30)
        assert response.status_code == status, (method, headers, response.text)
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
