"""``seqgpt-serve status`` against small fake servers (httpx.MockTransport: no sockets), and its
command line: the line a person reads and the exit status a script reads."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from loadtest.server import free_port
from serving.cli import status as status_cli
from serving.cli.app import main
from serving.cli.status import (
    EXIT_DOWN,
    EXIT_HEALTHY,
    EXIT_UNAUTHORIZED,
    EXIT_UNHEALTHY,
    gauge_sums,
    run,
)

URL = "http://127.0.0.1:8000"
KEY = "right-key"
# What vLLM 0.32's /metrics holds for these gauges: one sample per engine.
METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="seqgpt"} 2.0
vllm:num_requests_running{engine="1",model_name="seqgpt"} 1.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="seqgpt"} 4.0
vllm:num_requests_waiting_by_reason{engine="0",reason="capacity"} 9.0
"""
MODELS = {"object": "list", "data": [{"id": "seqgpt", "root": "/models/SeqGPT-560M"}]}
STATUS = {
    "healthy": True,
    "model": "DAMO-NLP/SeqGPT-560M",
    "device": "cuda",
    "dtype": "bfloat16",
    "cpu": "x86_64 AVX512, native bf16 (avx512_bf16, amx_bf16)",
    "running": 3,
    "waiting": 1,
    "inflight_prompts": 5,
    "max_inflight_prompts": 512,
    "draining": False,
}

Handler = Callable[[httpx.Request], httpx.Response]


def fake_server(routes: dict[str, httpx.Response], key: str | None = KEY) -> Handler:
    """A vLLM-like server: ``routes`` by path, 404 elsewhere, 401 without the key off /health."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if key and path != "/health" and request.headers.get("authorization") != f"Bearer {key}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        return routes.get(path, httpx.Response(404, json={"detail": "Not Found"}))

    return handle


def vllm_routes(health: int = 200) -> dict[str, httpx.Response]:
    """A server without /v1/status (vLLM's own routes only)."""
    return {
        "/health": httpx.Response(health),
        "/v1/models": httpx.Response(200, json=MODELS),
        "/metrics": httpx.Response(200, text=METRICS),
    }


def check(handler: Handler, key: str | None = KEY) -> int:
    return run(URL, key, transport=httpx.MockTransport(handler))


def only_line(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out, err = capsys.readouterr()
    assert len((out + err).splitlines()) == 1, out + err
    return out.strip(), err.strip()


def test_healthy_from_the_status_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(fake_server({"/v1/status": httpx.Response(200, json=STATUS)})) == EXIT_HEALTHY
    out, _ = only_line(capsys)
    assert out == (
        f"up: DAMO-NLP/SeqGPT-560M on cuda in bfloat16 at {URL}, 3 requests running, 1 waiting"
    )


def test_on_the_cpu_backend_the_line_says_the_cpu_and_the_dtype(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = {**STATUS, "device": "cpu", "dtype": "float32", "cpu": "x86_64 AVX2, no native bf16"}
    assert check(fake_server({"/v1/status": httpx.Response(200, json=body)})) == EXIT_HEALTHY
    out, _ = only_line(capsys)
    assert out == (
        "up: DAMO-NLP/SeqGPT-560M on cpu (x86_64 AVX2, no native bf16) in float32 at "
        f"{URL}, 3 requests running, 1 waiting"
    )


def test_a_status_route_from_before_the_dtype_gives_the_line_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = {key: value for key, value in STATUS.items() if key not in ("dtype", "cpu")}
    assert check(fake_server({"/v1/status": httpx.Response(200, json=body)})) == EXIT_HEALTHY
    out, _ = only_line(capsys)
    assert out == f"up: DAMO-NLP/SeqGPT-560M on cuda at {URL}, 3 requests running, 1 waiting"


def test_healthy_from_vllms_routes_when_there_is_no_status_route(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check(fake_server(vllm_routes())) == EXIT_HEALTHY
    out, _ = only_line(capsys)
    assert out == f"up: /models/SeqGPT-560M on unknown at {URL}, 3 requests running, 4 waiting"


def test_unhealthy_server_answering_503(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(fake_server(vllm_routes(health=503))) == EXIT_UNHEALTHY
    out, _ = only_line(capsys)
    assert out.startswith("unhealthy: /models/SeqGPT-560M on unknown")
    assert out.endswith("(/health answered 503)")


def test_a_draining_server_refusing_every_route_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = "The server is shutting down; retry in a moment."
    refused = httpx.Response(503, json={"error": {"message": message, "code": 503}})
    routes = {"/v1/status": refused, "/health": refused, "/v1/models": refused}
    routes["/metrics"] = httpx.Response(200, text=METRICS)
    assert check(fake_server(routes)) == EXIT_UNHEALTHY
    out, _ = only_line(capsys)
    assert out == (
        f"unhealthy: model unknown on unknown at {URL}, 3 requests running, 4 waiting "
        f"(/health answered 503: {message})"
    )


@pytest.mark.parametrize(
    ("fields", "state"), [({"healthy": False}, "unhealthy"), ({"draining": True}, "draining")]
)
def test_unhealthy_or_draining_from_the_status_route(
    fields: dict[str, bool], state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {**STATUS, **fields}
    assert check(fake_server({"/v1/status": httpx.Response(503, json=body)})) == EXIT_UNHEALTHY
    out, _ = only_line(capsys)
    assert out.startswith(f"{state}: DAMO-NLP/SeqGPT-560M on cuda")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "Connection refused"),
        (httpx.ReadTimeout("timed out"), "no answer within 5 s"),
    ],
)
def test_down(error: Exception, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise error

    assert check(refuse) == EXIT_DOWN
    out, _ = only_line(capsys)
    assert out.startswith(f"down: nothing answers at {URL} (")
    assert reason in out


@pytest.mark.parametrize(
    ("key", "said"), [("wrong-key", "refused the API key"), (None, "needs an API key")]
)
@pytest.mark.parametrize("with_status_route", [True, False])
def test_a_wrong_or_missing_key_is_one_line_on_stderr(
    key: str | None, said: str, with_status_route: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = vllm_routes()
    if with_status_route:
        routes["/v1/status"] = httpx.Response(200, json=STATUS)
    assert check(fake_server(routes), key=key) == EXIT_UNAUTHORIZED
    out, err = only_line(capsys)
    assert out == ""
    assert err == (
        f"error: {URL} {said} (401); pass the server's key with --api-key KEY or VLLM_API_KEY"
    )


def test_a_server_without_a_key_needs_none(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(fake_server(vllm_routes(), key=None), key=None) == EXIT_HEALTHY
    assert only_line(capsys)[0].startswith("up: ")


def test_missing_figures_are_shown_as_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    routes = {"/health": httpx.Response(200), "/metrics": httpx.Response(200, text="# none\n")}
    assert check(fake_server(routes)) == EXIT_HEALTHY
    out, _ = only_line(capsys)
    assert out == f"up: model unknown on unknown at {URL}, ? requests running, ? waiting"


def test_gauge_sums_adds_every_label_set_and_only_the_named_samples() -> None:
    text = METRICS + 'vllm:num_requests_running{odd="a } b"} 5 1700000000000\nbroken{x="1"}\n'
    sums = gauge_sums(text, ("vllm:num_requests_running", "vllm:num_requests_waiting"))
    assert sums == {"vllm:num_requests_running": 8.0, "vllm:num_requests_waiting": 4.0}
    assert gauge_sums("plain_gauge 2.5\n", ("plain_gauge",)) == {"plain_gauge": 2.5}


# --- the command line ---------------------------------------------------------------------


def test_the_command_reports_a_real_refused_connection(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "--url", url, "--timeout", "2"]) == EXIT_DOWN
    assert only_line(capsys)[0].startswith(f"down: nothing answers at {url}")


@pytest.mark.parametrize(
    ("argv", "env_key", "key"),
    [
        ([], "from-env", "from-env"),
        (["--api-key", "from-flag"], "from-env", "from-flag"),
        ([], None, None),
    ],
)
def test_the_key_defaults_to_vllm_api_key(
    argv: list[str], env_key: str | None, key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []

    def fake_run(url: str, api_key: str | None, *, timeout: float) -> int:
        seen.append((url, api_key))
        return 0

    if env_key is None:
        monkeypatch.delenv("VLLM_API_KEY", raising=False)
    else:
        monkeypatch.setenv("VLLM_API_KEY", env_key)
    monkeypatch.setattr(status_cli, "run", fake_run)
    assert main(["status", *argv]) == 0
    assert seen == [(status_cli.DEFAULT_URL, key)]


def test_a_url_without_a_scheme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", "localhost:8000"]) == 2
    assert only_line(capsys)[1].startswith("error: --url must start with http://")


def test_help_says_what_each_exit_status_means(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for code, meaning in [(0, "healthy"), (1, "not healthy"), (3, "down"), (4, "refused the key")]:
        assert f"{code} " in help_text
        assert meaning in help_text
    assert "VLLM_API_KEY" in help_text


def test_prompts_in_flight_are_shown_per_level_and_tenant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = {
        **STATUS,
        "inflight_by_tenant": {
            "search": {"interactive": 2, "batch": 0},
            "data": {"interactive": 0, "batch": 3},
        },
        "batch_prompts_waiting": 2,
    }
    assert check(fake_server({"/v1/status": httpx.Response(200, json=body)})) == EXIT_HEALTHY
    out, _ = capsys.readouterr()
    assert out.splitlines()[1:] == [
        "  in flight: 5 of 512 prompts (2 interactive, 3 batch; 2 batch waiting a turn)",
        "  tenant data: 0 interactive, 3 batch",
        "  tenant search: 2 interactive, 0 batch",
    ]
