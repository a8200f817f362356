"""The web UI against a real server: vLLM's CPU backend, the tiny random-weight model, an API key.

The model's answers are nonsense but real: a classification is a label of the set (the answer
is constrained), an extraction runs to its budget and rarely finds anything in the text, so the
highlighting of found spans is shown with scripted answers in ``test_ui_rendering.py``. Each
result on the page is checked against the REST API's answer to the same input (greedy decoding:
the same answer). The engine is killed last.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadtest.server import ServerProcess
from prompts import build_extract_prompts
from tests.servers import tiny_server

from .page import Page

KEY = "ui-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CLASSIFY_TEXT = "今天上证指数收涨1.2%，券商板块领涨。"
CLASSIFY_LABELS = "财经,体育，娱乐,科技"
EXTRACT_TEXT = "张三于2023年5月1日在北京加入阿里巴巴。"
EXTRACT_LABELS = "人物，地点,组织机构"
SCHEMA = '{"人物": ["职位", "就职于"], "组织机构": ["总部"]}'


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"SEQGPT_SPAN_TOKENS_PER_LABEL": "8"}  # random weights never end an extraction
    log = tmp_path_factory.mktemp("logs") / "ui-server.log"
    with tiny_server(tiny_model, api_key=KEY, env=env, log_path=log) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server: ServerProcess, browser: Any) -> Page:
    return Page(browser, server.url)


def _api(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    return httpx.post(server.url + path, json=body, headers=AUTH, timeout=120).json()


def test_the_page_needs_the_key_and_the_login_sets_a_strict_cookie(
    page: Page, server: ServerProcess
) -> None:
    page.open("/ui/")
    assert page.driver.current_url == server.url + "/ui/login"
    page.find("#key").send_keys("not-the-key")
    page.find("#login").click()
    page.wait(lambda: "not valid" in page.text(".error"))
    assert not page.driver.get_cookies()
    page.log_in(KEY)
    assert page.driver.current_url == server.url + "/ui/"
    (cookie,) = page.driver.get_cookies()
    assert cookie["name"] == "seqgpt_ui"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert KEY not in cookie["value"]
    # The cookie opens the UI and nothing else: the API still wants the key.
    jar = {"seqgpt_ui": cookie["value"]}
    assert httpx.get(server.url + "/ui/config", cookies=jar).status_code == 200
    assert httpx.get(server.url + "/v1/models", cookies=jar).status_code == 401
    body = {"text": CLASSIFY_TEXT, "labels": CLASSIFY_LABELS}
    assert httpx.post(server.url + "/v1/classify", json=body, cookies=jar).status_code == 401


def test_the_status_light_is_green_with_model_and_device(page: Page) -> None:
    state, words = page.status()
    assert state == "ok", words
    assert "Healthy" in words
    assert "seqgpt" in words
    assert "CPU" in words


def test_classify_on_the_page_answers_as_the_api(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    page.tab("Classification")
    page.fill("classify-text", CLASSIFY_TEXT)
    page.fill("classify-labels", CLASSIFY_LABELS)
    page.run("classify-run", "#classify-json")
    shown = page.wait(lambda: page.text("#classify-result [data-testid=label-output-value]"))
    api = _api(server, "/v1/classify", {"text": CLASSIFY_TEXT, "labels": CLASSIFY_LABELS})
    assert shown == api["label"]
    assert shown in {"财经", "体育", "娱乐", "科技"}
    print(f"\nscreenshot: {page.screenshot(tmp_path / 'ui-classify.png')}")


def test_scores_on_the_page_are_the_apis_scores_as_bars(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    page.tab("Classification")
    page.fill("classify-text", CLASSIFY_TEXT)
    page.fill("classify-labels", CLASSIFY_LABELS)
    page.find("#classify-scores input").click()
    try:
        page.run("classify-run", "#classify-json")
        meters = {
            label: page.wait(
                lambda label=label: page.find(
                    f'#classify-result [data-testid="{label}-confidence-set"] meter'
                ).get_attribute("aria-valuenow")
            )
            for label in ["财经", "体育", "娱乐", "科技"]
        }
    finally:
        page.find("#classify-scores input").click()
    body = {"text": CLASSIFY_TEXT, "labels": CLASSIFY_LABELS, "scores": True}
    api = _api(server, "/v1/classify", body)
    assert meters == {label: str(round(p * 100)) for label, p in api["scores"].items()}
    shown = page.text("#classify-result [data-testid=label-output-value]")
    assert shown == api["label"]
    print(f"\nscreenshot: {page.screenshot(tmp_path / 'ui-classify-scores.png')}")


def test_an_example_runs_with_one_click(page: Page) -> None:
    page.tab("Classification")
    before = page.text("#classify-json")
    page.find("#classify-examples tbody tr").click()
    page.wait(lambda: (shown := page.text("#classify-json")) and shown != before)
    assert "券商板块领涨，成交额突破万亿" in page.value("classify-text")
    assert page.text("#classify-error .seqgpt-error") == ""


def test_empty_text_shows_the_apis_own_sentence(page: Page, server: ServerProcess) -> None:
    page.tab("Classification")
    page.fill("classify-text", "")
    page.fill("classify-labels", CLASSIFY_LABELS)
    shown = page.run("classify-run", "#classify-error .seqgpt-error")
    api = _api(server, "/v1/classify", {"text": "", "labels": CLASSIFY_LABELS})
    assert shown == api["error"]["message"] == "The text is empty or blank."


def test_extract_on_the_page_answers_as_the_api(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    page.tab("Extraction")
    page.fill("extract-text", EXTRACT_TEXT)
    page.fill("extract-labels", EXTRACT_LABELS)
    page.run("extract-run", "#extract-json")
    api = _api(server, "/v1/extract", {"text": EXTRACT_TEXT, "labels": EXTRACT_LABELS})
    assert list(api["fields"]) == ["人物", "地点", "组织机构"]
    expected = [
        [label, s["text"], str(s["start"]), str(s["end"])]
        for label, spans in api["fields"].items()
        for s in spans
    ]
    page.wait_for_rows("extract-table", expected)
    # The text is shown with its spans marked (none is plain text only).
    assert "".join(page.text("#extract-spans").split()).find("张三于2023年5月1日") >= 0
    # Truncation is shown as the API reports it.
    assert ("Truncated" in page.text("#extract-note")) == api["truncated"]
    print(f"\nscreenshot: {page.screenshot(tmp_path / 'ui-extract.png')}")


def test_a_schema_on_the_page_answers_as_the_api_and_a_bad_one_shows_its_400(
    page: Page, server: ServerProcess
) -> None:
    page.tab("Extraction")
    page.fill("extract-text", EXTRACT_TEXT)
    page.fill("extract-labels", EXTRACT_LABELS)  # the schema is used instead
    page.fill("extract-schema", SCHEMA)
    page.run("extract-run", "#extract-json")
    api = _api(server, "/v1/extract", {"text": EXTRACT_TEXT, "schema": json.loads(SCHEMA)})
    assert list(api["fields"]) == ["人物", "组织机构"]
    # The table shows the nested answer one row per span, children under their path.
    expected = [
        [path, s["text"], str(s["start"]), str(s["end"])]
        for path, spans in _paths(api["fields"]).items()
        for s in spans
    ]
    page.wait_for_rows("extract-table", expected)

    bad = '{"人物": ["职位", ""]}'  # an empty field name
    page.fill("extract-schema", bad)
    shown = page.run("extract-run", "#extract-error .seqgpt-error")
    refused = httpx.post(
        server.url + "/v1/extract",
        json={"text": EXTRACT_TEXT, "schema": json.loads(bad)},
        headers=AUTH,
        timeout=120,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "schema"
    assert shown == refused.json()["error"]["message"]
    page.fill("extract-schema", "")


def _paths(fields: dict[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """An answer's spans by the page's path of labels (``人物 › 张三 › 职位``)."""
    flat: dict[str, list[Any]] = {}
    for label, spans in fields.items():
        flat.setdefault(prefix + label, []).extend(spans)
        for span in spans:
            below = _paths(span.get("fields") or {}, f"{prefix}{label} › {span['text']} › ")
            for path, found in below.items():
                flat.setdefault(path, []).extend(found)
    return flat


def test_a_free_prompt_generates_as_completions_do(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    prompt = build_extract_prompts(EXTRACT_TEXT, ["人物", "地点"])[0]
    page.tab("Free prompt")
    page.fill("prompt-text", prompt)
    page.wait_for_value("prompt-text", prompt)
    page.run("prompt-run", "#prompt-json")
    body = {"model": "seqgpt", "prompt": prompt, "max_tokens": 64, "temperature": 0}
    api = _api(server, "/v1/completions", body)
    page.wait_for_value("prompt-generation", api["choices"][0]["text"])
    assert ("Truncated" in page.text("#prompt-note")) == (
        api["choices"][0]["finish_reason"] == "length"
    )
    print(f"\nscreenshot: {page.screenshot(tmp_path / 'ui-prompt.png')}")


def _engine_core(pid: int) -> psutil.Process:
    for child in psutil.Process(pid).children(recursive=True):
        if "EngineCore" in child.name():  # vLLM sets the process title VLLM::EngineCore
            return child
    raise AssertionError("no EngineCore process under the server")


def test_the_light_turns_red_when_the_engine_dies(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    assert page.status()[0] == "ok"
    killed_at = time.perf_counter()
    os.kill(_engine_core(server.pid).pid, signal.SIGKILL)
    state, words = page.wait(lambda: (s := page.status())[0] != "ok" and s, timeout=60)
    print(f"\nlight red after {time.perf_counter() - killed_at:.1f} s: {state}: {words}")
    assert state in {"down", "lost"}
    assert "engine" in words or "server" in words
    page.screenshot(tmp_path / "ui-engine-dead.png")
