"""The request options over the fake engine: per-label ``scores`` and ``decoding``.

The fake engine's log-probabilities follow its scripted answer (``tests/api/fake_engine.py``),
so the expected scores are computed here from its constants.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from serving.core.forcing import FORCED_TOKENS, PROCESSOR
from serving.core.scoring import SCORE_PRIORITY
from tests.api.fake_engine import LIKELY, UNLIKELY, UNLIKELY_EOS, FakeEngine

LABELS = ["财经", "体育", "娱乐"]
PROMPT = "输入: 今天的比赛很精彩\n分类: 财经，体育，娱乐\n输出: [GEN]"


def _classify(client: TestClient, **options: object) -> dict[str, object]:
    body = {"text": "今天的比赛很精彩", "labels": LABELS, **options}
    response = client.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_scores_are_each_labels_probability_normalised_over_the_set(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育"
    answer = _classify(client, scores=True)
    # 体育 continues the answer at both characters and then ends; the others miss at both.
    logprob = {"财经": 2 * UNLIKELY + UNLIKELY_EOS, "体育": 3 * LIKELY, "娱乐": 2 * UNLIKELY}
    logprob["娱乐"] += UNLIKELY_EOS
    total = sum(math.exp(v) for v in logprob.values())
    expected = {label: math.exp(v) / total for label, v in logprob.items()}
    assert list(answer) == ["label", "labels", "scores", "windows", "truncated", "usage"]
    assert answer["scores"] == pytest.approx(expected, abs=1e-12)
    assert list(answer["scores"]) == LABELS  # type: ignore[call-overload]
    assert answer["label"] == "体育"
    assert answer["labels"] == ["体育"]
    assert answer["truncated"] is False


def test_scores_send_one_read_per_label_reading_the_prefix_cache_and_decode_nothing(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育"
    answer = _classify(client, scores=True, return_prompts=True)
    assert [call.prompt for call in engine.calls] == [PROMPT + label for label in LABELS]
    for call in engine.calls:
        assert call.params.max_tokens == 1
        assert call.params.prompt_logprobs == 0
        assert call.params.logprob_token_ids == [0]  # the end of sequence
        assert call.params.skip_reading_prefix_cache is False  # the prompt is prefilled once
        assert call.params.structured_outputs is None
        assert call.priority == SCORE_PRIORITY  # behind waiting task prompts
    assert answer["prompts"] == [PROMPT]
    assert answer["usage"] == {
        "prompt_tokens": len(PROMPT) + 6,
        "completion_tokens": 0,
        "total_tokens": len(PROMPT) + 6,
    }


def test_a_score_read_whose_cache_hit_covers_the_label_is_run_again_without_the_cache(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育"
    engine.cached_tokens = len(PROMPT)  # the label rows would not have been computed
    answer = _classify(client, scores=True)
    assert len(engine.calls) == 2 * len(LABELS)
    reruns = [call for call in engine.calls if call.request_id.endswith("-again")]
    assert len(reruns) == len(LABELS)
    assert all(call.params.skip_reading_prefix_cache for call in reruns)
    assert answer["label"] == "体育"


@pytest.fixture
def forcing(make_client: Callable[..., TestClient], engine: FakeEngine) -> TestClient:
    """A client of the fake engine started with ``--logits-processors`` naming ForcedTokens."""
    engine.logits_processors = [PROCESSOR]
    engine.respond = lambda _p, _s: "体育"
    return make_client()


def test_with_forced_tokens_registered_each_label_is_one_forced_read_of_the_prompt(
    forcing: TestClient, engine: FakeEngine
) -> None:
    answer = _classify(forcing, scores=True, return_prompts=True)
    assert [call.prompt for call in engine.calls] == [PROMPT] * len(LABELS)
    for call, label in zip(engine.calls, LABELS, strict=True):
        forced = [ord(c) for c in label] + [0]  # the label's tokens, then the end of sequence
        assert call.params.extra_args == {FORCED_TOKENS: forced}
        assert call.params.max_tokens == len(forced)
        assert call.params.logprobs == 0  # the sampled token's own log-probability only
        assert call.params.prompt_logprobs is None  # no output row at a prompt position
        assert call.params.structured_outputs is None
        assert call.priority == SCORE_PRIORITY
    assert answer["prompts"] == [PROMPT]
    assert answer["usage"] == {
        "prompt_tokens": len(PROMPT) + 6,
        "completion_tokens": 0,
        "total_tokens": len(PROMPT) + 6,
    }


@pytest.mark.parametrize("processors", [[], [PROCESSOR]], ids=["prompt reads", "forced reads"])
def test_at_most_max_score_reads_reads_are_in_the_engine_at_once(
    make_client: Callable[..., TestClient], engine: FakeEngine, processors: list[str]
) -> None:
    engine.logits_processors = processors
    engine.respond = lambda _p, _s: "体育"
    engine.delay = 0.05
    labels = [f"类别{i}" for i in range(7)]
    client = make_client(max_score_reads=3)
    body = {"text": "今天的比赛很精彩", "labels": labels, "scores": True}
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/classify", json=body), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert len(engine.calls) == 2 * len(labels)  # every read ran, three at a time
    assert engine.most_running == 3


def test_beside_a_task_prompt_at_most_max_score_reads_busy_reads_are_in_the_engine(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    engine.logits_processors = [PROCESSOR]
    engine.respond = lambda _p, _s: "体育"
    engine.delay = 0.2
    client = make_client(max_score_reads=6, max_score_reads_busy=1)
    plain = {"text": "今天的比赛很精彩", "labels": LABELS}
    scored = {**plain, "labels": [f"类别{i}" for i in range(6)], "scores": True}
    with ThreadPoolExecutor(3) as pool:
        answers = [pool.submit(client.post, "/v1/classify", json=plain)]
        # The scored request comes once a task prompt is in the engine: sent at once, its reads
        # could all start (idle turns) before any task prompt did.
        deadline = time.monotonic() + 10
        while not engine.running and time.monotonic() < deadline:
            time.sleep(0.005)
        answers += [pool.submit(client.post, "/v1/classify", json=body) for body in (scored, plain)]
    assert [a.result().status_code for a in answers] == [200, 200, 200]
    beside = [reads for tasks, reads in engine.read_starts if tasks]
    assert beside, "no read started while a task prompt ran: the test shows nothing"
    assert max(beside) == 1
    assert max(reads for _, reads in engine.read_starts) > 1  # idle turns: all six at once


def test_forced_reads_give_the_scores_prompt_reads_give(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育"
    prompt_reads = _classify(make_client(), scores=True)
    engine.logits_processors = [PROCESSOR]
    forced_reads = _classify(make_client(), scores=True)
    assert forced_reads == prompt_reads
    assert {call.params.extra_args is None for call in engine.calls} == {True, False}


def test_a_forced_read_that_generated_other_tokens_is_a_500_never_a_score(
    forcing: TestClient, engine: FakeEngine
) -> None:
    engine.forcing_works = False
    body = {"text": "今天的比赛很精彩", "labels": LABELS, "scores": True}
    response = forcing.post("/v1/classify", json=body)
    assert response.status_code == 500, response.text
    assert "scores" not in response.text


def test_reference_decoding_is_a_four_beam_search_unconstrained(
    client: TestClient, engine: FakeEngine
) -> None:
    engine.respond = lambda _p, _s: "体育"
    answer = _classify(client, decoding="reference", return_prompts=True)
    assert answer["label"] == "体育"
    assert answer["generations"] == ["体育"]
    assert answer["truncated"] is False
    assert engine.calls, "beam search reached the engine"
    for call in engine.calls:
        assert call.params.max_tokens == 1
        assert call.params.logprobs == 8  # vLLM's beam search reads 2 x 4 beams' candidates
        assert call.params.structured_outputs is None


def test_reference_extraction_reads_the_same_lines(client: TestClient, engine: FakeEngine) -> None:
    engine.respond = lambda _p, _s: "人物: 张三\n地点: 北京"
    body = {"text": "张三在北京", "labels": ["人物", "地点"], "decoding": "reference"}
    response = client.post("/v1/extract", json=body)
    assert response.status_code == 200, response.text
    fields = response.json()["fields"]
    assert fields == {
        "人物": [{"text": "张三", "start": 0, "end": 2}],
        "地点": [{"text": "北京", "start": 3, "end": 5}],
    }


def test_reference_decoding_stops_at_max_new_tokens_and_says_truncated(
    make_client: Callable[..., TestClient], engine: FakeEngine
) -> None:
    client = make_client(max_new_tokens=3)
    engine.respond = lambda _p, _s: "人物: 张三\n地点: 北京"
    body = {"text": "张三在北京", "labels": ["人物", "地点"], "decoding": "reference"}
    answer = client.post("/v1/extract", json=body).json()
    assert answer["truncated"] is True
    assert answer["fields"] == {"人物": [], "地点": []}  # "人物:" was being written: dropped


@pytest.mark.parametrize(
    ("path", "body", "param", "message"),
    [
        ("/v1/classify", {"decoding": "beam"}, "decoding", "'fast' or 'reference'"),
        ("/v1/extract", {"decoding": "greedy"}, "decoding", "'fast' or 'reference'"),
        ("/v1/classify", {"scores": "yes"}, "scores", "valid boolean"),
        ("/v1/classify", {"scores": True, "multi_label": True}, "scores", "not multi_label"),
        ("/v1/classify", {"scores": True, "decoding": "reference"}, "decoding", "nothing is"),
        ("/v1/extract", {"scores": True}, "scores", "not accepted"),
        ("/v1/classify/batch", {"decoding": "beam"}, "decoding", "'fast' or 'reference'"),
        ("/v1/classify/batch", {"scores": True, "multi_label": True}, "scores", "multi_label"),
    ],
    ids=[
        "unknown-mode",
        "unknown-mode-extract",
        "scores-not-boolean",
        "scores-multi-label",
        "scores-reference",
        "scores-extract",
        "batch-unknown-mode",
        "batch-scores-multi-label",
    ],
)
def test_bad_options_are_400s_that_reach_no_engine(
    client: TestClient,
    engine: FakeEngine,
    path: str,
    body: dict[str, object],
    param: str,
    message: str,
) -> None:
    texts = {"texts": ["今天的比赛很精彩"]} if path.endswith("batch") else {"text": "今天的比赛"}
    response = client.post(path, json={**texts, "labels": LABELS, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "BadRequestError"
    assert error["param"] == param
    assert message in error["message"]
    assert engine.calls == []


def test_a_batch_with_scores_scores_every_item(client: TestClient, engine: FakeEngine) -> None:
    engine.respond = lambda prompt, _s: "娱乐" if "电影" in prompt else "体育"
    body = {"texts": ["今天的比赛很精彩", "这部电影很好看"], "labels": LABELS, "scores": True}
    results = client.post("/v1/classify/batch", json=body).json()["results"]
    assert [r["label"] for r in results] == ["体育", "娱乐"]
    assert all(math.isclose(sum(r["scores"].values()), 1.0) for r in results)


def test_openapi_documents_the_options(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name, field in [
        ("ClassifyRequest", "scores"),
        ("ClassifyRequest", "decoding"),
        ("ExtractRequest", "decoding"),
        ("ClassifyBatchRequest", "scores"),
        ("ExtractBatchRequest", "decoding"),
        ("ClassifyResponse", "scores"),
    ]:
        assert schemas[name]["properties"][field].get("description"), (name, field)
    assert schemas["ClassifyRequest"]["properties"]["decoding"]["enum"] == ["fast", "reference"]
