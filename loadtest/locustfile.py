"""Locust suite for seqgpt-serve: classify, extract, completions and streamed completions.

Run it against any deployment (from the repository root)::

    locust --config loadtest/locust.conf --host http://localhost:8000

Every response is checked (``checks.py``): a label outside the set or a span that is not in
the text at its offsets is a failure, not a success. Streaming reports time to first token as
its own row, ``completions stream TTFT``. When locust quits, the SLO gates (``slo.py``) set the
exit code: non-zero when any row's failure ratio or p95 latency is over its threshold. Add
``loadtest/shapes.py`` to ``-f`` for a step-load shape.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from locust import HttpUser, events, task
from locust.env import Environment

from loadtest.checks import (
    CheckError,
    check_classify,
    check_completion,
    check_extract,
    check_stream,
)
from loadtest.corpus import (
    Entry,
    classify_body,
    completion_body,
    extract_body,
    load_corpus,
)
from loadtest.slo import EndpointStats, Thresholds, breaches, parse_overrides

logger = logging.getLogger("loadtest")

TTFT_NAME = "completions stream TTFT"
DEFAULT_MIX = "classify=4,extract=2,completions=1,stream=1"
Check = Callable[[dict[str, Any], dict[str, Any]], None]


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("seqgpt-serve")
    group.add_argument("--api-key", env_var="LOCUST_API_KEY", default="", help="Bearer key.")
    group.add_argument("--model-name", default="seqgpt", help="Model name for /v1/completions.")
    group.add_argument("--mix", default=DEFAULT_MIX, help="Weights of the user classes.")
    group.add_argument("--completion-max-tokens", type=int, default=16, help="max_tokens.")
    group.add_argument("--multi-label-share", type=float, default=0.2, help="Share multi_label.")
    group.add_argument("--allow-no-label", action="store_true", help="Accept label=null.")
    group.add_argument("--think-time", type=float, default=0.0, help="Seconds between requests.")
    group.add_argument("--request-timeout", type=float, default=300.0, help="Seconds.")
    group.add_argument("--slo-max-failure-ratio", type=float, default=0.0, help="Gate.")
    group.add_argument("--slo-p95-ms", type=float, default=0.0, help="Gate on every row (0: off).")
    group.add_argument("--slo-p95-overrides", default="", help='"NAME=MS,..." per-row gates.')


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"classify=4,extract=2"`` into weights; unknown names are an error."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name.strip() not in USER_CLASSES:
            raise ValueError(f"--mix: unknown user {name!r}; known: {sorted(USER_CLASSES)}")
        weights[name.strip()] = float(value or 1)
    return weights


@events.init.add_listener
def _apply_mix(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    weights = parse_mix(options.mix)
    for name, user_class in USER_CLASSES.items():
        # locust's dispatcher needs integer weights
        user_class.weight = round(weights.get(name, 0) * 100)
    environment.user_classes[:] = [c for c in environment.user_classes if c.weight > 0]
    parse_overrides(options.slo_p95_overrides)  # fail at start, not at the end


class SeqGPTUser(HttpUser):
    """Common parts: auth header, think time, checked POSTs, a random corpus entry."""

    abstract = True

    def on_start(self) -> None:
        """Send the API key, when one is given, on every request."""
        if self.options.api_key:
            self.client.headers["Authorization"] = f"Bearer {self.options.api_key}"

    @property
    def options(self) -> Any:
        """Locust's parsed command line and config."""
        return self.environment.parsed_options

    def wait_time(self) -> float:
        """Think time between two requests of one user (0: closed loop)."""
        return float(self.options.think_time)

    @staticmethod
    def entry() -> Entry:
        """A random text of the corpus."""
        return random.choice(load_corpus())

    def post_checked(self, path: str, body: dict[str, Any], name: str, check: Check) -> None:
        """POST ``body`` and mark the request failed unless ``check`` accepts the answer."""
        with self.client.post(
            path, json=body, name=name, catch_response=True, timeout=self.options.request_timeout
        ) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))
                return
            try:
                check(body, response.json())
            except CheckError as exc:
                response.failure(f"wrong answer: {exc}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                response.failure(f"malformed response: {type(exc).__name__}")


def _http_error(response: requests.Response) -> str:
    """``HTTP 401 Unauthorized``: the status and the API error type, stable across requests."""
    try:
        kind = response.json()["error"]["type"]
    except (ValueError, KeyError, TypeError):
        kind = response.reason or "error"
    return f"HTTP {response.status_code} {kind}"


class ClassifyUser(SeqGPTUser):
    """``POST /v1/classify``; a share of requests with ``multi_label``."""

    @task
    def classify(self) -> None:
        """Classify a corpus text into its label set."""
        multi = random.random() < self.options.multi_label_share
        body = classify_body(self.entry(), multi_label=multi)
        name = "/v1/classify multi_label" if multi else "/v1/classify"

        def check(request: dict[str, Any], answer: dict[str, Any]) -> None:
            check_classify(request, answer, allow_none=self.options.allow_no_label)

        self.post_checked("/v1/classify", body, name, check)


class ExtractUser(SeqGPTUser):
    """``POST /v1/extract``."""

    @task
    def extract(self) -> None:
        """Extract the fields of a corpus text."""
        self.post_checked("/v1/extract", extract_body(self.entry()), "/v1/extract", check_extract)


class CompletionsUser(SeqGPTUser):
    """``POST /v1/completions`` with a SeqGPT prompt (vLLM's own route, no streaming)."""

    @task
    def complete(self) -> None:
        """Send a corpus text's classification prompt as a plain completion."""
        body = completion_body(
            self.entry(),
            model=self.options.model_name,
            max_tokens=self.options.completion_max_tokens,
        )
        self.post_checked("/v1/completions", body, "/v1/completions", check_completion)


class StreamUser(SeqGPTUser):
    """``POST /v1/completions`` with ``stream``; time to first token is its own row."""

    @task
    def stream(self) -> None:
        """Stream a completion, check every event, report the time to the first one."""
        body = completion_body(
            self.entry(),
            model=self.options.model_name,
            max_tokens=self.options.completion_max_tokens,
            stream=True,
        )
        start = time.perf_counter()
        first: list[float] = []
        with self.client.post(
            "/v1/completions",
            json=body,
            name="/v1/completions stream",
            stream=True,
            catch_response=True,
            timeout=self.options.request_timeout,
        ) as response:
            if response.status_code != 200:
                response.failure(_http_error(response))
                return
            try:
                check_stream(body, _timed_lines(response, first))
            except CheckError as exc:
                response.failure(f"wrong answer: {exc}")
            except requests.RequestException as exc:
                response.failure(f"stream broken: {type(exc).__name__}")
            # locust timed only the headers; the row should show the whole stream
            response.request_meta["response_time"] = (time.perf_counter() - start) * 1000
        if first:
            self.environment.events.request.fire(
                request_type="TTFT",
                name=TTFT_NAME,
                response_time=(first[0] - start) * 1000,
                response_length=0,
                exception=None,
                context={},
            )


def _timed_lines(response: requests.Response, first: list[float]) -> Iterator[str]:
    """The stream's lines; the arrival time of the first event is appended to ``first``."""
    for raw in response.iter_lines():
        if raw and not first:
            first.append(time.perf_counter())
        yield raw.decode("utf-8")


USER_CLASSES: dict[str, type[SeqGPTUser]] = {
    "classify": ClassifyUser,
    "extract": ExtractUser,
    "completions": CompletionsUser,
    "stream": StreamUser,
}


@events.quitting.add_listener
def _slo_gate(environment: Environment, **_kwargs: Any) -> None:
    """Set the exit code from the SLO gates (locust's own error rule otherwise)."""
    options = environment.parsed_options
    if options is None or environment.runner is None:
        return
    limits = Thresholds(
        max_failure_ratio=options.slo_max_failure_ratio,
        p95_ms=options.slo_p95_ms,
        p95_ms_by_name=parse_overrides(options.slo_p95_overrides),
    )
    rows = [
        EndpointStats(e.name, e.num_requests, e.num_failures, e.get_response_time_percentile(0.95))
        for e in environment.stats.entries.values()
    ]
    broken = breaches(rows, limits)
    for line in broken:
        logger.error("SLO breach: %s", line)
    if broken:
        environment.process_exit_code = options.exit_code_on_error
    elif not environment.runner.exceptions:
        # Failures within the allowed ratio do not fail the run; task exceptions still do.
        logger.info("SLO gates passed for %d rows", len(rows))
        environment.process_exit_code = 0
