"""What the page shows for answers the random-weight model never gives: spans to highlight,
several named labels, a cut answer, a full in-flight bound, a failing engine, a lost server.

The app is the real one (plugin, gate, service, UI) served by uvicorn in this process; only
the engine is a fake with scripted answers (``tests/api/fake_engine.py``), since the engine is
not what these tests are about. No API key is set here: the UI is open like every route.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from selenium.webdriver.common.by import By
from vllm.sampling_params import SamplingParams

from loadtest.server import free_port
from serving.core.settings import Settings
from serving.ui.app import STALE_AFTER_S, STATUS_REFRESH_S
from tests.api.conftest import build_app
from tests.api.fake_engine import FakeCompletions, FakeEngine

from .page import Page

TEXT = "张三于2023年5月1日在北京加入阿里巴巴。"
ANSWERS = {
    "抽取": "人物: 张三\n地点: 北京\n组织机构: 阿里巴巴\n",
    "分类": "财经，科技",
}


def _respond(prompt: str, _params: SamplingParams) -> str | BaseException:
    if "失败" in prompt:
        return RuntimeError("scripted engine failure")
    task = prompt.split("\n")[-2].split(":")[0]
    return ANSWERS.get(task, "")


class _Served:
    """uvicorn serving ``app`` on a free port from a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.url = f"http://127.0.0.1:{free_port(8200, 8299)}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def engine() -> FakeEngine:
    return FakeEngine(respond=_respond)


@pytest.fixture(scope="module")
def served(engine: FakeEngine) -> Iterator[_Served]:
    # One prompt in flight at most, so that one slow request fills the bound.
    settings = Settings(max_inflight=1, max_labels=6, ui=True)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("VLLM_API_KEY", raising=False)
        app = build_app(engine, settings, [])
    app.state.args.served_model_name = ["seqgpt"]
    app.state.openai_serving_completion = FakeCompletions(engine)  # the free prompt's handler
    with _Served(app) as server:
        yield server


@pytest.fixture(scope="module")
def page(served: _Served, browser: Any) -> Page:
    return Page(browser, served.url)


def test_without_a_key_the_ui_is_open_and_the_login_leads_to_it(
    page: Page, served: _Served
) -> None:
    page.open("/ui/login")
    page.wait_ready()
    assert page.driver.current_url == served.url + "/ui/"
    assert not page.driver.find_elements(By.ID, "seqgpt-logout")


def test_extraction_highlights_each_span_with_its_label(page: Page, tmp_path: Path) -> None:
    page.tab("Extraction")
    page.fill("extract-text", TEXT)
    page.fill("extract-labels", "人物,地点，组织机构")
    page.run("extract-run", "#extract-json")
    legend = page.wait(
        lambda: page.driver.find_elements(By.CSS_SELECTOR, "#extract-spans .legend-item")
    )
    colour_of = {item.text: item.value_of_css_property("background-color") for item in legend}
    marked = page.driver.find_elements(By.CSS_SELECTOR, "#extract-spans .token.highlighted")
    label_of = {c: label for label, c in colour_of.items()}
    shown = {m.text: label_of[m.value_of_css_property("background-color")] for m in marked}
    assert shown == {"张三": "人物", "北京": "地点", "阿里巴巴": "组织机构"}
    plain = page.driver.find_elements(By.CSS_SELECTOR, "#extract-spans .token .unlabeled")
    assert "".join(t.text for t in plain) == "于2023年5月1日在加入。"
    expected = [["人物", "张三", "0", "2"], ["地点", "北京", "13", "15"]]
    page.wait_for_rows("extract-table", [*expected, ["组织机构", "阿里巴巴", "17", "21"]])
    page.screenshot(tmp_path / "ui-extract.png")
    print(f"\nscreenshot: {tmp_path / 'ui-extract.png'}")


def test_a_free_extraction_prompt_shows_the_fields_extract_reads(page: Page) -> None:
    page.tab("Free prompt")
    page.fill("prompt-text", f"输入: {TEXT}\n抽取: 人物，地点，组织机构\n输出: [GEN]")
    page.run("prompt-run", "#prompt-json")
    page.wait_for_value("prompt-generation", ANSWERS["抽取"])
    expected = [["人物", "张三", "0", "2"], ["地点", "北京", "13", "15"]]
    page.wait_for_rows("prompt-table", [*expected, ["组织机构", "阿里巴巴", "17", "21"]])


def test_multi_label_shows_every_named_label(page: Page) -> None:
    page.tab("Classification")
    page.fill("classify-text", "央行宣布降准，科技股领涨大盘。")
    page.fill("classify-labels", "财经,体育,科技")
    page.find("#classify-multi input").click()
    page.run("classify-run", "#classify-json")
    page.wait_for_value("classify-named", "财经，科技")
    assert page.text("#classify-result [data-testid=label-output-value]") == "财经"
    page.find("#classify-multi input").click()


def test_a_cut_answer_is_flagged_as_the_api_flags_it(page: Page, engine: FakeEngine) -> None:
    engine.finish_reason = "length"
    try:
        page.tab("Extraction")
        page.fill("extract-text", TEXT + "（截断）")
        page.run("extract-run", "#extract-json")
        assert "truncated: true" in page.wait(lambda: page.text("#extract-note"))
    finally:
        engine.finish_reason = "stop"


def test_a_full_in_flight_bound_shows_the_429_sentence(
    page: Page, served: _Served, engine: FakeEngine
) -> None:
    engine.delay = 4.0
    body = {"text": "占位请求", "labels": ["人物"]}
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            holder = threading.Thread(
                target=client.post, args=("/v1/extract",), kwargs={"json": body}
            )
            holder.start()
            page.wait(lambda: engine.calls and engine.calls[-1].prompt.startswith("输入: 占位"))
            page.tab("Classification")
            page.fill("classify-text", "满载时的请求")
            shown = page.run("classify-run", "#classify-error .seqgpt-error")
            holder.join()
    finally:
        engine.delay = 0.0
    assert shown == "The server is at its limit of 1 prompts in flight; retry in a moment."


def test_an_engine_failure_shows_a_sentence_not_a_trace(page: Page) -> None:
    page.tab("Classification")
    page.fill("classify-text", "这个请求会失败")
    shown = page.run("classify-run", "#classify-error .seqgpt-error")
    assert shown == "The server failed to answer this request."


def test_the_light_turns_red_when_the_engine_is_unhealthy(page: Page, engine: FakeEngine) -> None:
    assert page.status()[0] == "ok"
    engine.errored = True
    try:
        state, words = page.wait(
            lambda: (s := page.status())[0] != "ok" and s, timeout=STATUS_REFRESH_S + 10
        )
    finally:
        engine.errored = False
    assert state == "down"
    assert "The engine does not answer its health check." in words
    page.wait(lambda: page.status()[0] == "ok", timeout=STATUS_REFRESH_S + 10)


def test_the_light_turns_red_by_itself_when_the_server_is_gone(page: Page, served: _Served) -> None:
    assert page.status()[0] == "ok"
    served.stop()
    stopped_at = time.perf_counter()
    _, words = page.wait(
        lambda: (s := page.status())[0] == "lost" and s, timeout=STALE_AFTER_S + 15
    )
    print(f"\nlight red {time.perf_counter() - stopped_at:.1f} s after the server stopped")
    assert "The server does not answer." in words
