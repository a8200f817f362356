"""Tenants on the real server: one server for the module, two API processes
(``--api-server-count 2``) and a tenants file. Scopes (403 vs 401) on the task, completion and
metrics routes, vLLM's own /v1 check included; a tenant's requests-per-minute held by the server
as a whole across both processes (429, ``Retry-After``, OpenAI's headers); the tenant label on
``/metrics``; the file re-read by both processes with no restart; a broken file keeping the last
good set with one log line per process; ``seqgpt-serve serve`` refusing a broken file at once.

Every wait here is bounded and polls for a state (a key that works, a log line): none is a sleep.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtest.server import ServerProcess, seqgpt_serve
from serving.core.tenants import key_digest
from tests.servers import Pace, measure_pace, tiny_server

pytestmark = pytest.mark.timeout(600)

API_KEY = "tenants-plain-key"
METRICS_KEY = "tenants-metrics-only-key"
TASKS, CHAT, SMALL, NEW = "search-key", "chat-key", "small-key", "new-tenant-key"
SMALL_RPM = 2  # one request a minute per API process: no refill during the test
CLASSIFY = {"text": "今天上证指数收涨1.2%，券商板块领涨。", "labels": ["财经", "体育"]}
RELOAD_S = 5.0  # the bound for a change to hold in every process
BROKEN = "seqgpt: tenants file not reloaded"


def _block(name: str, key: str, scopes: str, extra: str = "") -> str:
    return f'[tenants.{name}]\nkey_sha256 = "{key_digest(key)}"\nscopes = [{scopes}]\n{extra}\n'


FILE = (
    _block("search", TASKS, '"tasks"')
    + _block("chat", CHAT, '"completions"')
    + _block("small", SMALL, '"tasks"', f"requests_per_minute = {SMALL_RPM}")
)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _rewrite(path: Path, text: str) -> None:
    """Replace the file whole (a new inode), as an editor or a ConfigMap update does."""
    draft = path.with_suffix(".new")
    draft.write_text(text)
    os.replace(draft, path)


@pytest.fixture(scope="module")
def tenants_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tenants") / "tenants.toml"
    path.write_text(FILE)
    return path


@pytest.fixture(scope="module")
def server(
    tiny_model: Path, tenants_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "SEQGPT_TENANTS_FILE": str(tenants_file),
        "SEQGPT_METRICS_KEY": METRICS_KEY,
        "SEQGPT_SPAN_TOKENS_PER_LABEL": "8",
    }
    log = tmp_path_factory.mktemp("tenants-server") / "server.log"
    extra = ("--api-server-count", "2")
    with tiny_server(tiny_model, api_key=API_KEY, env=env, log_path=log, extra_args=extra) as s:
        yield s


@pytest.fixture(scope="module")
def pace(server: ServerProcess) -> Pace:
    return measure_pace(server.url, _auth(API_KEY))


def _fresh(
    server: ServerProcess, method: str, path: str, key: str, **options: object
) -> httpx.Response:
    """One request on a connection of its own (it may land on either API process)."""
    with httpx.Client(base_url=server.url, timeout=120) as client:
        return client.request(method, path, headers=_auth(key), **options)  # type: ignore[arg-type]


def test_keys_reach_their_scopes_only(server: ServerProcess) -> None:
    post = httpx.post
    url = server.url
    assert post(f"{url}/v1/classify", json=CLASSIFY, headers=_auth(TASKS)).status_code == 200
    completion = {"model": "seqgpt", "prompt": "你好", "max_tokens": 2}
    refused = post(f"{url}/v1/completions", json=completion, headers=_auth(TASKS))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == 403
    assert httpx.get(f"{url}/metrics", headers=_auth(TASKS)).status_code == 403
    assert post(f"{url}/v1/classify", json=CLASSIFY, headers=_auth(METRICS_KEY)).status_code == 403
    unknown = post(f"{url}/v1/classify", json=CLASSIFY, headers=_auth("no-such-key"))
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == 401
    # A tenant's key passes vLLM's own check on /v1 too (it asks the same registry).
    chat = post(f"{url}/v1/completions", json=completion, headers=_auth(CHAT))
    assert chat.status_code == 200, chat.text
    assert httpx.get(f"{url}/v1/models", headers=_auth(CHAT)).status_code == 200


def test_the_tenant_label_on_metrics(server: ServerProcess) -> None:
    assert httpx.post(f"{server.url}/v1/classify", json=CLASSIFY, headers=_auth(TASKS)).is_success
    text = httpx.get(f"{server.url}/metrics", headers=_auth(METRICS_KEY)).text
    tenants = {
        sample.labels.get("tenant")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "seqgpt_requests_total"
    }
    assert "search" in tenants
    assert tenants <= {"search", "small", "chat", "default", "metrics", "new", "-"}


def test_two_processes_together_hold_a_tenants_requests_per_minute(server: ServerProcess) -> None:
    # Each process holds 1 of the 2 a minute, refilled in 60 s: more than the limit, each on a
    # connection of its own, lands on both processes and never gets more than 2 answers.
    answers = [_fresh(server, "GET", "/v1/status", SMALL) for _ in range(5 * SMALL_RPM)]
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert 1 <= len(served) <= SMALL_RPM
    assert len(served) + len(refused) == len(answers)
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "1"  # this process's share
        assert "x-ratelimit-reset-requests" in answer.headers
    assert all(1 <= int(a.headers["retry-after"]) <= 60 for a in refused)
    assert all(a.json()["error"]["code"] == 429 for a in refused)


def _until_every_process_takes(server: ServerProcess, key: str, deadline: float) -> None:
    """Poll (fresh connections) until ``key`` works 10 times in a row, or fail at ``deadline``."""
    streak = 0
    while streak < 10:
        status = _fresh(server, "GET", "/v1/status", key).status_code
        streak = streak + 1 if status == 200 else 0
        assert time.monotonic() < deadline, f"a new tenant's key still gets {status}"


def test_a_changed_file_holds_in_both_processes_with_no_restart(
    server: ServerProcess, tenants_file: Path, pace: Pace
) -> None:
    assert _fresh(server, "GET", "/v1/status", NEW).status_code == 401
    _rewrite(tenants_file, FILE + _block("new", NEW, '"tasks"'))
    _until_every_process_takes(server, NEW, time.monotonic() + pace(RELOAD_S) + 5)


def test_a_broken_file_keeps_the_last_good_set_with_one_line_per_process(
    server: ServerProcess, tenants_file: Path, pace: Pace
) -> None:
    assert server.log_path is not None
    _rewrite(tenants_file, FILE + "[tenants.oops\n")
    deadline = time.monotonic() + pace(RELOAD_S) + 5
    while server.log_path.read_text(errors="replace").count(BROKEN) < 2:  # both processes
        assert _fresh(server, "GET", "/v1/status", TASKS).status_code == 200
        assert time.monotonic() < deadline, "the broken file was never noticed"
    for _ in range(20):  # still the last good set, and no more lines
        assert _fresh(server, "GET", "/v1/status", TASKS).status_code == 200
        assert _fresh(server, "GET", "/v1/status", NEW).status_code == 200
    assert server.log_path.read_text(errors="replace").count(BROKEN) == 2
    _rewrite(tenants_file, FILE)


def test_serve_refuses_a_broken_file_at_once(tmp_path: Path, tiny_model: Path) -> None:
    broken = tmp_path / "tenants.toml"
    broken.write_text('[tenants.a]\nkey_sha256 = "abc"\nscopes = ["tasks"]\n')
    env = {**os.environ, "SEQGPT_TENANTS_FILE": str(broken)}
    done = subprocess.run(
        [seqgpt_serve(), "serve", "--model", str(tiny_model), "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: SEQGPT_TENANTS_FILE: ")
    assert "key_sha256" in lines[0]
    assert "vllm" not in done.stdout.lower()  # no engine was started
