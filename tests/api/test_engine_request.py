"""What ``/v1/classify`` asks of the engine is what the same constrained prompt sent by hand to
``/v1/completions`` asks: the engine does the same work for both, and the API process no more
(``loadtest/api_cost.py`` measures both sides)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from vllm.entrypoints.openai.completion.protocol import CompletionRequest
from vllm.sampling_params import SamplingParams

from prompts import build_classify_prompt
from tests.api.fake_engine import FakeEngine

LABELS = ["体育", "财经", "科技"]
TEXT = "中国队赢了决赛。"


def _by_hand(max_tokens: int) -> SamplingParams:
    """vLLM's parameters for the body ``loadtest`` sends by hand (``Workloads.raw_classify``)."""
    body = CompletionRequest(
        model="seqgpt",
        prompt=build_classify_prompt(TEXT, LABELS),
        max_tokens=max_tokens,
        temperature=0.0,
        structured_outputs={"choice": LABELS},
    )
    return body.to_sampling_params(max_tokens, {})


def test_classify_sends_the_sampling_parameters_of_the_constrained_prompt_by_hand(
    client: TestClient, engine: FakeEngine
) -> None:
    """Every field alike, ``skip_clone`` included: without it the engine client deep-copies
    each request's parameters (grammar and labels) in the API process, which vLLM's own
    route spares itself."""
    engine.respond = lambda _p, _s: "体育"
    response = client.post("/v1/classify", json={"text": TEXT, "labels": LABELS})
    assert response.status_code == 200, response.text
    [call] = engine.calls
    ours, theirs = call.params, _by_hand(call.params.max_tokens or 0)
    differ = {
        name: (getattr(ours, name), getattr(theirs, name))
        for name in SamplingParams.__struct_fields__
        if getattr(ours, name) != getattr(theirs, name)
    }
    assert differ == {}
    assert ours.clone().structured_outputs is ours.structured_outputs  # copied shallowly
