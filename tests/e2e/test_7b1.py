"""SeqGPT-7B1's shape served end to end: the same prompts through the real plugin and vLLM.

The checkpoint is ``make-test-model --size 7b1``: BLOOMZ-7B1's hidden size (4096), heads (32 of
size 128), vocabulary (250,880 rows) and the 560m model's tokenizer, with 2 of its 30 layers,
random weights (nonsense answers: shapes, counts and prompts are checked, never values). It is
made once into ``.models/7b1`` and reused (~2 min and 5.4 GB of peak memory to make, 2.9 GB on
disk). The server is this module's own, as small as it can be: fp32 as every test server
(``tests.servers``), a 512-token context, a 1 GiB KV cache (``VLLM_CPU_KVCACHE_SPACE``), 2-token
extraction budgets. It still takes ~13 GB: vLLM's CPU backend keeps the 250,880 x 4096 embedding
(4.1 GB in fp32) and a oneDNN-packed copy of it for the tied output layer (``remove_weight=False``
in ``vocab_parallel_embedding.py``), and the worker was seen at 12.1 GB before its KV cache. So
the module runs where that much memory is free (CI's 24 GB machine runs the tiers one after the
other) and is skipped, saying so, on a machine shared with other servers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.server import ServerProcess, ensure_model
from prompts import build_classify_prompt, build_extract_prompts
from tests.servers import DTYPE, tiny_server

pytestmark = pytest.mark.timeout(1800)

API_KEY = "seqgpt-7b1-key"
MODEL_DIR = Path(__file__).resolve().parents[2] / ".models" / "7b1"
NEEDED_GIB = 14  # the server's ~13 GB (measured) and the test process
READY_TIMEOUT_S = 900.0  # loading 5.7 GB of fp32 weights on a slow, shared CI machine
TEXT = "张三于2023年5月1日在北京加入阿里巴巴，担任技术总监。"
LABELS = ["财经", "体育", "娱乐", "科技"]
FIELDS = ["人物", "地点", "组织机构", "时间", "职位", "事件", "金额"]  # two chunk prompts


def _available_gib() -> float:
    """MemAvailable of /proc/meminfo, GiB."""
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


@pytest.fixture(scope="module")
def model() -> Path:
    """The 7b1 test checkpoint in .models/7b1, made the first time (~2 min)."""
    return ensure_model(MODEL_DIR, "7b1")


@pytest.fixture(scope="module")
def server(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if (available := _available_gib()) < NEEDED_GIB:
        pytest.skip(f"the 7B1-shaped server needs {NEEDED_GIB} GiB free, {available:.1f} here")
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "SEQGPT_SPAN_TOKENS_PER_LABEL": "2"}
    log = tmp_path_factory.mktemp("logs") / "7b1-server.log"
    args = ("--max-model-len", "512")
    remote = tiny_server(model, api_key=API_KEY, extra_args=args, env=env, log_path=log)
    remote.start(timeout=READY_TIMEOUT_S)
    try:
        yield remote
    finally:
        remote.stop()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        yield client


def test_the_checkpoint_has_seqgpt_7b1s_shape(model: Path) -> None:
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    shape = (config["hidden_size"], config["n_head"], config["vocab_size"], config["n_layer"])
    assert shape == (4096, 32, 250_880, 2)
    assert config["seqgpt_serve_full_layers"] == 30


def test_status_and_models_name_the_7b1_checkpoint(http: httpx.Client) -> None:
    status = http.get("/v1/status")
    assert status.status_code == 200, status.text
    body = status.json()
    assert (body["healthy"], body["model"], body["dtype"]) == (True, "seqgpt", DTYPE)
    models = http.get("/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["seqgpt", str(MODEL_DIR)]
    assert {m["max_model_len"] for m in models} == {512}


def test_classify_answers_a_label_of_the_set_from_seqgpts_prompt(http: httpx.Client) -> None:
    response = http.post(
        "/v1/classify", json={"text": TEXT, "labels": LABELS, "return_prompts": True}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["label"] in LABELS
    assert data["labels"] == [data["label"]]
    assert data["prompts"] == [build_classify_prompt(TEXT, LABELS)]
    assert data["usage"]["prompt_tokens"] > 0
    assert data["usage"]["completion_tokens"] > 0


def test_extract_answers_every_field_grounded_from_seqgpts_prompts(http: httpx.Client) -> None:
    response = http.post(
        "/v1/extract", json={"text": TEXT, "labels": FIELDS, "return_prompts": True}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["prompts"] == build_extract_prompts(TEXT, FIELDS)
    assert len(data["generations"]) == len(data["prompts"]) == 2
    assert list(data["fields"]) == FIELDS
    for spans in data["fields"].values():
        for span in spans:
            assert TEXT[span["start"] : span["end"]] == span["text"]
    assert isinstance(data["ungrounded"], dict)


def test_a_bad_request_gets_the_openai_error_body(http: httpx.Client) -> None:
    response = http.post("/v1/classify", json={"text": TEXT, "labels": []})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
