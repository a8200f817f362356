"""Long documents through the routes and the service over the fake engine (one token per
character): windows, their prompts, spans in the original text, the combined label, limits."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from vllm.sampling_params import SamplingParams

from prompts import build_classify_prompt, build_extract_prompts
from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from tests.api.fake_engine import LIKELY, UNLIKELY, UNLIKELY_EOS, CharTokenizer, FakeEngine

MAX_MODEL_LEN = 200
# 60 sentences of 12 or 13 characters: 759 characters, far over one 200-token prompt.
DOCUMENT = "".join(
    f"第{i}句：张三在北京工作。" if i % 3 == 0 else f"第{i}句：李四去了上海。" for i in range(60)
)
WINDOW_TEXT = re.compile(r"\A输入: (.*)\n(?:分类|抽取): .*\n输出: \[GEN\]\Z", re.DOTALL)


@pytest.fixture
def windowed(make_client: Callable[..., TestClient], engine: FakeEngine) -> TestClient:
    engine.max_model_len = MAX_MODEL_LEN
    return make_client(
        max_text_chars=5000, span_tokens_per_label=4, max_inflight=64, window_overlap_tokens=20
    )


def _window_texts(prompts: list[str]) -> list[str]:
    texts = []
    for prompt in prompts:
        match = WINDOW_TEXT.match(prompt)
        assert match is not None, prompt
        texts.append(match.group(1))
    return texts


def _assert_windows_cover(text: str, windows: list[str]) -> None:
    """Each window is a slice of the text, in order, overlapping or touching the one before."""
    position, reached = 0, 0
    for window in windows:
        start = text.find(window, position)
        assert 0 <= start <= reached, (window, reached)
        position, reached = start + 1, start + len(window)
    assert reached == len(text.rstrip())


def test_a_text_that_fits_is_one_window_with_todays_prompt(
    windowed: TestClient, engine: FakeEngine
) -> None:
    text = "今天上证指数大涨。"
    body = {"text": text, "labels": ["财经", "体育"], "return_prompts": True}
    data = windowed.post("/v1/classify", json=body).json()
    assert data["windows"] == 1
    assert data["prompts"] == [build_classify_prompt(text, ["财经", "体育"])]
    assert list(data) == [
        "label",
        "labels",
        "windows",
        "truncated",
        "usage",
        "prompts",
        "generations",
    ]


def test_a_long_text_is_classified_in_windows_every_prompt_listed(
    windowed: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _prompt, _params: "财经"
    body = {"text": DOCUMENT, "labels": ["财经", "体育"], "return_prompts": True}
    response = windowed.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["windows"] > 1
    assert len(data["prompts"]) == len(data["generations"]) == data["windows"]
    assert data["prompts"] == [call.prompt for call in engine.calls]  # all of them, in order
    windows = _window_texts(data["prompts"])
    _assert_windows_cover(DOCUMENT, windows)
    assert all(w.endswith("。") for w in windows)  # whole sentences
    for call in engine.calls:
        assert len(call.prompt) + (call.params.max_tokens or 0) <= MAX_MODEL_LEN
    assert data["usage"]["prompt_tokens"] == sum(len(p) for p in data["prompts"])
    assert data["usage"]["completion_tokens"] == 2 * data["windows"]
    assert (data["label"], data["labels"], data["truncated"]) == ("财经", ["财经"], False)


def _by_window(answers: dict[int, str], default: str = "") -> Callable[[str, SamplingParams], str]:
    """Answer window ``i`` (told by its first sentence) with ``answers[i]``, else ``default``."""
    firsts: list[str] = []

    def respond(prompt: str, _params: SamplingParams) -> str:
        first = prompt.split("句", 1)[0]
        if first not in firsts:
            firsts.append(first)
        return answers.get(firsts.index(first), default)

    return respond


def test_single_label_is_the_windows_majority_vote(
    windowed: TestClient, engine: FakeEngine
) -> None:
    engine.respond = _by_window({0: "体育", 1: "财经", 2: "财经"})
    body = {"text": DOCUMENT, "labels": ["财经", "体育"], "return_prompts": True}
    data = windowed.post("/v1/classify", json=body).json()
    assert data["generations"][:3] == ["体育", "财经", "财经"]
    assert (data["label"], data["labels"]) == ("财经", ["财经"])


def test_a_tie_goes_to_the_earliest_window(windowed: TestClient, engine: FakeEngine) -> None:
    engine.respond = _by_window({0: "", 1: "体育", 2: "财经"})
    data = windowed.post("/v1/classify", json={"text": DOCUMENT, "labels": ["财经", "体育"]})
    assert data.json()["labels"] == ["体育"]


def test_multi_label_is_the_union_of_the_windows(windowed: TestClient, engine: FakeEngine) -> None:
    engine.respond = _by_window({0: "体育", 1: "娱乐，体育", 3: "财经"})
    body = {"text": DOCUMENT, "labels": ["财经", "体育", "娱乐"], "multi_label": True}
    data = windowed.post("/v1/classify", json=body).json()
    assert data["windows"] > 3
    assert (data["label"], data["labels"]) == ("体育", ["体育", "娱乐", "财经"])


def test_spans_map_back_to_the_original_text_once_each(
    windowed: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _prompt, _params: "人物: 张三\t李四\n地点: 北京\t上海\t广州"
    text = "  " + DOCUMENT  # leading blanks: offsets still count them
    body = {"text": text, "labels": ["人物", "地点"], "return_prompts": True}
    response = windowed.post("/v1/extract", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["windows"] > 1
    assert len(data["prompts"]) == data["windows"]
    _assert_windows_cover(text.strip(), _window_texts(data["prompts"]))
    for label, names in (("人物", ("张三", "李四")), ("地点", ("北京", "上海"))):
        spans = data["fields"][label]
        for span in spans:
            assert text[span["start"] : span["end"]] == span["text"]
        # Every mention of the text, each once although the windows overlap.
        expected = sorted(m.start() for name in names for m in re.finditer(name, text))
        assert [span["start"] for span in spans] == expected
    assert data["ungrounded"] == {"地点": ["广州"]}


def test_extraction_chunks_run_in_every_window(windowed: TestClient, engine: FakeEngine) -> None:
    labels = [f"标签{i}" for i in range(8)]  # two chunks: 4 and 4 labels
    body = {"text": DOCUMENT, "labels": labels, "return_prompts": True}
    data = windowed.post("/v1/extract", json=body).json()
    assert len(data["prompts"]) == 2 * data["windows"]
    windows = _window_texts(data["prompts"])
    assert windows[0::2] == windows[1::2]  # both chunks of a window read the same text
    assert data["prompts"][:2] == build_extract_prompts(windows[0], labels, 6)
    assert list(data["fields"]) == labels


def test_truncated_when_any_window_stops_for_length(
    windowed: TestClient, engine: FakeEngine
) -> None:
    engine.finish_reason = "length"
    data = windowed.post("/v1/extract", json={"text": DOCUMENT, "labels": ["人物"]}).json()
    assert data["windows"] > 1
    assert data["truncated"] is True


def test_window_tokens_splits_a_text_that_would_fit_the_context(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_text_chars=5000, window_tokens=100, window_overlap_tokens=0)
    body = {"text": DOCUMENT[:300], "labels": ["财经", "体育"], "return_prompts": True}
    data = client.post("/v1/classify", json=body).json()
    assert data["windows"] > 1
    assert all(len(prompt) <= 100 for prompt in data["prompts"])
    assert "".join(_window_texts(data["prompts"])) == DOCUMENT[:300]  # no overlap: a partition


def test_a_text_needing_more_prompts_than_the_bound_is_a_413_not_a_429(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    engine.max_model_len = MAX_MODEL_LEN
    client = make_client(max_text_chars=5000, span_tokens_per_label=4, max_inflight=4)
    response = client.post("/v1/classify", json={"text": DOCUMENT, "labels": ["财经", "体育"]})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("RequestTooLargeError", "text", 413)
    assert "windows" in error["message"]
    assert "at most 4 prompts" in error["message"]
    assert "Retry-After" not in response.headers
    assert engine.calls == []


def test_a_batch_item_in_windows_and_one_over_the_limit(
    windowed: TestClient, engine: FakeEngine
) -> None:
    texts = ["短文本。", DOCUMENT, "字" * 5001]
    response = windowed.post("/v1/extract/batch", json={"texts": texts, "labels": ["人物"]})
    assert response.status_code == 200, response.text
    short, long, over = response.json()["results"]
    assert short["windows"] == 1
    assert long["windows"] > 1
    assert (over["error"]["code"], over["error"]["type"]) == (413, "RequestTooLargeError")


def test_openapi_documents_the_windows_field(windowed: TestClient) -> None:
    schemas = windowed.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ClassifyResponse", "ExtractResponse"):
        properties = schemas[name]["properties"]
        assert "windows" in schemas[name]["required"]
        assert "windows" in properties["windows"]["description"]
        order = list(properties)
        assert order.index("windows") < order.index("truncated") < order.index("usage")


class JoiningTokenizer(CharTokenizer):
    """One token per character, and one more wherever a sentence follows another: counted
    apart, sentences sum to fewer tokens than the window that joins them."""

    def encode(self, text: str, **_kwargs: Any) -> list[int]:
        return super().encode(text) + [0] * text.count("。第")


def test_windows_shrink_until_every_prompt_fits_with_the_real_count() -> None:
    engine = FakeEngine(respond=lambda _prompt, _params: "财经")
    settings = Settings(max_text_chars=5000, window_overlap_tokens=0)
    service = SeqGPTService(
        engine, JoiningTokenizer(), settings, max_model_len=MAX_MODEL_LEN, max_inflight=64
    )
    result = asyncio.run(service.classify(DOCUMENT, ["财经", "体育"]))
    assert result.windows > 1
    assert result.value == ["财经"]
    # The fake engine shows each token id as one character: a prompt's length is its tokens.
    sizes = [len(call.prompt) + (call.params.max_tokens or 0) for call in engine.calls]
    assert max(sizes) <= MAX_MODEL_LEN
    # Packed by the sentences' own counts, the first windows were over: they were re-planned
    # smaller, not cut, and still nearly fill the context.
    assert max(sizes) > MAX_MODEL_LEN - 20


def test_labels_that_leave_no_room_under_window_tokens_are_a_400(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_text_chars=5000, window_tokens=20)
    response = client.post("/v1/classify", json={"text": DOCUMENT, "labels": ["财经", "体育"]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "labels"
    assert "no room for the text" in response.json()["error"]["message"]
    assert engine.calls == []


def _window_scores(answer: str, labels: list[str]) -> dict[str, float]:
    """The fake engine's normalised scores for a window it answers with ``answer``."""
    logprob = {
        label: 3 * LIKELY if label == answer else 2 * UNLIKELY + UNLIKELY_EOS for label in labels
    }
    total = sum(math.exp(v) for v in logprob.values())
    return {label: math.exp(v) / total for label, v in logprob.items()}


def test_scores_over_windows_are_the_mean_of_the_windows_scores(
    windowed: TestClient, engine: FakeEngine
) -> None:
    labels = ["财经", "体育"]
    engine.respond = lambda prompt, _params: "体育" if "输入: 第0句" in prompt else "财经"
    body = {"text": DOCUMENT, "labels": labels, "scores": True, "return_prompts": True}
    response = windowed.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    windows = data["windows"]
    assert windows > 3
    assert len(data["prompts"]) == windows
    _assert_windows_cover(DOCUMENT, _window_texts(data["prompts"]))
    answers = ["体育"] + ["财经"] * (windows - 1)  # the first window only says 体育
    per_window = [_window_scores(answer, labels) for answer in answers]
    expected = {label: sum(w[label] for w in per_window) / windows for label in labels}
    assert data["scores"] == pytest.approx(expected, abs=1e-12)
    assert sum(data["scores"].values()) == pytest.approx(1.0)
    assert (data["label"], data["labels"]) == ("财经", ["财经"])


def test_reference_decoding_runs_in_every_window_and_counts_its_beams(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    engine.max_model_len = MAX_MODEL_LEN
    engine.respond = lambda _p, _s: "人物: 张三"
    settings = {"max_text_chars": 5000, "span_tokens_per_label": 4}
    client = make_client(**settings, max_inflight=64)
    body = {"text": DOCUMENT, "labels": ["人物"], "decoding": "reference"}
    data = client.post("/v1/extract", json=body).json()
    assert data["windows"] > 1
    assert [s["start"] for s in data["fields"]["人物"]] == [
        m.start() for m in re.finditer("张三", DOCUMENT)
    ]
    # 4 beams a prompt: the same windows that fast decoding runs need 4 times the bound.
    windows = data["windows"]
    client = make_client(**settings, max_inflight=4 * windows - 1)
    assert client.post("/v1/extract", json={**body, "decoding": "fast"}).status_code == 200
    response = client.post("/v1/extract", json=body)
    assert response.status_code == 413, response.text
    assert f"{4 * windows} prompts" in response.json()["error"]["message"]


def test_the_request_log_counts_windows_and_the_labels_once(
    windowed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="seqgpt.requests"):
        data = windowed.post("/v1/classify", json={"text": DOCUMENT, "labels": ["财经", "体育"]})
    (record,) = [r for r in caplog.records if r.name == "seqgpt.requests"]
    line = json.loads(record.getMessage())
    windows = data.json()["windows"]
    assert windows > 1
    assert (line["windows"], line["prompts"], line["labels"]) == (windows, windows, 2)


class ThreadRecordingTokenizer(CharTokenizer):
    """One token per character; remembers the threads it ran on."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def encode(self, text: str, **_kwargs: Any) -> list[int]:
        self.threads.add(threading.current_thread().name)
        return super().encode(text)


@pytest.mark.parametrize(("text", "on_the_loop"), [(DOCUMENT, True), (DOCUMENT * 12, False)])
def test_a_long_text_is_tokenized_off_the_event_loop(text: str, on_the_loop: bool) -> None:
    engine = FakeEngine(respond=lambda _prompt, _params: "财经")
    tokenizer = ThreadRecordingTokenizer()
    settings = Settings(max_text_chars=10_000)
    service = SeqGPTService(
        engine, tokenizer, settings, max_model_len=MAX_MODEL_LEN, max_inflight=512
    )
    result = asyncio.run(service.classify(text, ["财经", "体育"]))
    assert result.windows > 1
    assert (tokenizer.threads == {threading.current_thread().name}) is on_the_loop
