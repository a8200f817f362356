"""Scores and reference decoding on the real server, against ``transformers`` on the same fp32
checkpoint.

- Scores: each label's ``log p(label tokens, then end of sequence | prompt)`` computed directly
  with ``transformers``, normalised over the set, equals the server's scores within 1e-3; the
  log-ratios between labels are compared too (within 1e-3 relative), since the tiny checkpoint
  is so confident that most probabilities are near 0 or 1.
- The prompt is prefilled once: the other labels' reads hit vLLM's prefix cache for the prompt.
- A repeated request whose cached blocks hold label tokens still gets the same scores (the
  reads that hit the cache past the prompt are run again without it).
- Reference decoding spells what ``transformers``' 4-beam search spells.
"""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prompts import build_classify_prompt

TOLERANCE = 1e-3
BLOCK = 128  # vLLM's CPU block size: the prefix cache holds whole blocks
CASES = [
    ("今天上证指数大涨，券商板块领涨。", ["财经", "体育", "娱乐", "科技"]),
    ("The match ended 3-1 after extra time.", ["sports", "finance", "politics"]),
    ("新款手机发布 New phone launch", ["科技", "technology news", "天气", "美食"]),
]


@pytest.fixture(scope="module")
def hf(tiny_model: Path) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return tokenizer, model


def _hf_logprobs(hf: tuple[Any, Any], prompt: str, labels: list[str]) -> list[float]:
    tokenizer, model = hf
    prompt_ids = tokenizer.encode(prompt, split_special_tokens=True)
    found = []
    for label in labels:
        label_ids = tokenizer.encode(label, add_special_tokens=False, split_special_tokens=True)
        ids = prompt_ids + label_ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        start = len(prompt_ids) - 1
        total = sum(float(logp[start + i, t]) for i, t in enumerate(label_ids))
        found.append(total + float(logp[len(ids) - 1, tokenizer.eos_token_id]))
    return found


def _scores(http: httpx.Client, text: str, labels: list[str]) -> dict[str, Any]:
    body = {"text": text, "labels": labels, "scores": True, "return_prompts": True}
    response = http.post("/v1/classify", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize(("text", "labels"), CASES)
def test_scores_equal_transformers_within_1e_3(
    http: httpx.Client, hf: tuple[Any, Any], text: str, labels: list[str]
) -> None:
    answer = _scores(http, text, labels)
    expected = _hf_logprobs(hf, answer["prompts"][0], labels)
    top = max(expected)
    weights = [math.exp(v - top) for v in expected]
    probabilities = {label: w / sum(weights) for label, w in zip(labels, weights, strict=True)}
    scores = answer["scores"]
    assert list(scores) == labels
    assert scores == pytest.approx(probabilities, abs=TOLERANCE)
    assert math.isclose(sum(scores.values()), 1.0, abs_tol=1e-9)
    assert answer["label"] == max(probabilities, key=probabilities.__getitem__)
    best = labels.index(answer["label"])
    for label, value in zip(labels, expected, strict=True):
        if scores[label] > 1e-300:  # the log-ratio to the best label, where it is representable
            ratio = math.log(scores[label]) - math.log(scores[answer["label"]])
            # fp32 in two implementations: log-probabilities of -12 agree to ~1e-4 relative.
            assert ratio == pytest.approx(value - expected[best], rel=TOLERANCE, abs=TOLERANCE)


def _cache_hits(http: httpx.Client) -> float:
    metrics = http.get("/metrics").text
    return sum(
        float(v) for v in re.findall(r"^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)", metrics, re.M)
    )


def test_the_prompt_is_prefilled_once_for_every_label(
    http: httpx.Client, hf: tuple[Any, Any]
) -> None:
    labels = ["财经", "体育", "娱乐", "科技", "教育"]
    # Two whole blocks, and five reads of it reach a busy engine together (a long completion
    # keeps it decoding): they fit in one engine step, and still prefill the prompt once.
    text = "。".join(f"第{i}条：市场今天继续上涨，投资者情绪乐观" for i in range(7))
    tokenizer = hf[0]
    busy = {"model": "seqgpt", "prompt": "输入: 忙\n输出: [GEN]", "max_tokens": 1800}
    with ThreadPoolExecutor(1) as pool:
        background = pool.submit(http.post, "/v1/completions", json=busy)
        time.sleep(0.5)  # the completion is decoding
        before = _cache_hits(http)
        answer = _scores(http, text, labels)
        hits = _cache_hits(http) - before
        assert not background.done(), "the engine was idle: the test shows nothing"
        assert background.result().status_code == 200
    prompt_tokens = len(tokenizer.encode(answer["prompts"][0], split_special_tokens=True))
    assert 2 * BLOCK <= prompt_tokens < 3 * BLOCK
    # Every label after the first reads the prompt's whole blocks from the cache.
    assert hits >= (len(labels) - 1) * (prompt_tokens // BLOCK) * BLOCK


def test_scores_are_the_same_when_cached_blocks_hold_label_tokens(
    http: httpx.Client, hf: tuple[Any, Any]
) -> None:
    tokenizer = hf[0]
    labels = ["财经新闻报道", "体育"]
    # Find a text whose prompt ends one token before a block boundary: the first label's
    # tokens then fill that block, and a repeat of the request reads it from the cache.
    for size in range(200, 400):
        text = f"#{size:03d} " + "市场今天继续上涨" * (size // 8) + "x" * (size % 8)
        prompt = build_classify_prompt(text, labels)
        if len(tokenizer.encode(prompt, split_special_tokens=True)) % BLOCK == BLOCK - 1:
            break
    else:
        pytest.fail("no text found whose prompt ends one token before a block boundary")
    probe = _scores(http, text, labels)
    assert probe["prompts"] == [prompt]
    again = _scores(http, text, labels)
    assert again["scores"] == pytest.approx(probe["scores"], abs=1e-6)
    expected = _normalised(_hf_logprobs(hf, prompt, labels))
    assert again["scores"] == pytest.approx(dict(zip(labels, expected, strict=True)), abs=TOLERANCE)


def _normalised(logprobs: list[float]) -> list[float]:
    top = max(logprobs)
    weights = [math.exp(v - top) for v in logprobs]
    return [w / sum(weights) for w in weights]


def test_reference_decoding_spells_what_transformers_beam_search_spells(
    http: httpx.Client, hf: tuple[Any, Any]
) -> None:
    tokenizer, model = hf
    body = {"text": "张三于2023年在北京加入阿里巴巴。", "labels": ["人物", "地点"]}
    response = http.post(
        "/v1/extract", json={**body, "decoding": "reference", "return_prompts": True}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    [prompt], [generation] = answer["prompts"], answer["generations"]
    budget = answer["usage"]["completion_tokens"]
    assert answer["truncated"] is True  # random weights never end: the whole budget is used
    ids = torch.tensor([tokenizer.encode(prompt, split_special_tokens=True)])
    with torch.no_grad():
        out = model.generate(
            ids,
            max_new_tokens=budget,
            min_new_tokens=budget,
            num_beams=4,
            do_sample=False,
            early_stopping=False,
            length_penalty=1.0,
        )
    expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert generation == expected


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/classify", {"decoding": "beam"}, 400, "decoding"),
        ("/v1/extract", {"decoding": "greedy"}, 400, "decoding"),
        ("/v1/classify", {"scores": True, "multi_label": True}, 400, "scores"),
        ("/v1/classify", {"scores": True, "decoding": "reference"}, 400, "decoding"),
        ("/v1/extract", {"scores": True}, 400, "scores"),
        ("/v1/classify/batch", {"texts": []}, 400, "texts"),
        ("/v1/extract/batch", {"texts": ["张三"] * 65}, 400, "texts"),
        ("/v1/classify/batch", {"texts": ["张三"], "decoding": "beam"}, 400, "decoding"),
    ],
    ids=[
        "unknown-mode",
        "unknown-mode-extract",
        "scores-multi-label",
        "scores-reference",
        "scores-extract",
        "empty-batch",
        "batch-over-the-limit",
        "batch-unknown-mode",
    ],
)
def test_bad_options_get_a_400_naming_the_field(
    http: httpx.Client, path: str, body: dict[str, Any], status: int, param: str
) -> None:
    text = {} if path.endswith("batch") else {"text": "张三在北京"}
    response = http.post(path, json={**text, "labels": ["人物", "地点"], **body})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "BadRequestError"


def test_every_field_of_the_task_api_is_documented(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    ours = [
        "ClassifyRequest",
        "ClassifyResponse",
        "ExtractRequest",
        "ExtractResponse",
        "ClassifyBatchRequest",
        "ExtractBatchRequest",
        "ClassifyBatchResponse",
        "ExtractBatchResponse",
        "Usage",
        "SpanModel",
        "ItemError",
    ]
    undocumented = [
        f"{name}.{field}"
        for name in ours
        for field, schema in schemas[name]["properties"].items()
        if not schema.get("description") and "$ref" not in schema
    ]
    assert undocumented == []
