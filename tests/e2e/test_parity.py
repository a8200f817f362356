"""Parity with Hugging Face transformers: the service's prompts, decoded greedily by the server,
give exactly the tokens that ``transformers`` ``generate`` (greedy) gives for the same prompts.

This pins tokenisation, prompt bytes and decoding to what SeqGPT's own code does. The tiny test
checkpoint is fp32 with a large initializer range, so the next-token choice is confident and
two correct implementations cannot flip a near-tie by rounding; the test also checks that margin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

NEW_TOKENS = 24
MIN_MARGIN = 1e-3  # logit gap between the best and second-best token at every step
CASES = [
    (
        "/v1/classify",
        {"text": "今天上证指数大涨，券商板块领涨。", "labels": ["财经", "体育", "娱乐"]},
    ),
    ("/v1/classify", {"text": "The match ended 3-1.", "labels": ["sports", "finance"]}),
    (
        "/v1/extract",
        {"text": "张三于2023年在北京加入阿里巴巴。", "labels": ["人物", "地点", "组织"]},
    ),
    ("/v1/extract", {"text": "Tim Cook visited Paris\tin May.\n", "labels": list("abcdefghijklm")}),
]


@pytest.fixture(scope="module")
def hf(tiny_model: Path) -> tuple[Any, Any]:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return tokenizer, model


def _service_prompts(http: httpx.Client) -> list[str]:
    prompts: list[str] = []
    for path, body in CASES:
        response = http.post(path, json={**body, "return_prompts": True})
        assert response.status_code == 200, response.text
        prompts += response.json()["prompts"]
    return prompts


def _hf_greedy(hf: tuple[Any, Any], prompt: str) -> tuple[list[int], list[int]]:
    tokenizer, model = hf
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            num_beams=1,
            output_scores=True,
            return_dict_in_generate=True,
        )
    margins = [float(torch.topk(step[0], 2).values.diff().abs()) for step in out.scores]
    assert min(margins) > MIN_MARGIN, "test checkpoint is not confident enough for parity"
    return ids[0].tolist(), out.sequences[0, ids.shape[1] :].tolist()


def test_server_tokens_equal_transformers_greedy_tokens(http: httpx.Client, hf: Any) -> None:
    prompts = _service_prompts(http)
    assert len(prompts) == 1 + 1 + 1 + 3
    for prompt in prompts:
        body = {
            "model": "seqgpt",
            "prompt": prompt,
            "max_tokens": NEW_TOKENS,
            "min_tokens": NEW_TOKENS,
            "temperature": 0,
            "return_token_ids": True,
        }
        choice = http.post("/v1/completions", json=body).json()["choices"][0]
        hf_prompt_ids, hf_new_ids = _hf_greedy(hf, prompt)
        assert choice["prompt_token_ids"] == hf_prompt_ids
        assert choice["token_ids"] == hf_new_ids, prompt


def test_task_endpoint_generation_equals_transformers_text(http: httpx.Client, hf: Any) -> None:
    # The unconstrained task paths (multi-label classify, extract) run the same greedy decode.
    tokenizer = hf[0]
    body = {"text": "张三于2023年在北京加入阿里巴巴。", "labels": ["人物"], "return_prompts": True}
    data = http.post("/v1/extract", json=body).json()
    (prompt,), (generation,) = data["prompts"], data["generations"]
    _, hf_ids = _hf_greedy(hf, prompt)
    budget = data["usage"]["completion_tokens"]
    assert budget <= NEW_TOKENS or pytest.fail("budget over NEW_TOKENS: raise NEW_TOKENS")
    assert generation == tokenizer.decode(hf_ids[:budget], skip_special_tokens=True)
