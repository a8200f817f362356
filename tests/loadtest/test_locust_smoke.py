"""A few seconds of the locust suite against a real server on the tiny model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.server import ServerProcess
from tests.servers import tiny_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "loadtest-smoke-key"
EVERY_ROW = {
    "/v1/classify",
    "/v1/extract",
    "/v1/completions",
    "/v1/completions stream",
    "completions stream TTFT",
}


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with an API key so the suite's auth is exercised."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with tiny_server(tiny_model, api_key=API_KEY, log_path=log) as running:
        yield running


def run_locust(
    server: ServerProcess, out: Path, *flags: str, key: str = API_KEY
) -> subprocess.CompletedProcess[str]:
    """``python -m loadtest.run --host ...`` (the make target's command) for a few seconds."""
    command = [sys.executable, "-m", "loadtest.run", "--host", server.url, "--out", str(out)]
    command += ["-u", "4", "-r", "4", "-t", "6s", "--stop-timeout", "30s"]
    command += ["--mix", "classify=1,extract=1,completions=1,stream=1", *flags]
    env = {**os.environ, "LOCUST_API_KEY": key}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def stats_rows(out: Path) -> dict[str, dict[str, str]]:
    """locust's per-row statistics CSV, by row name."""
    with (out / "locust_stats.csv").open(encoding="utf-8") as rows:
        return {row["Name"]: row for row in csv.DictReader(rows)}


def test_every_endpoint_answers_correctly(server: ServerProcess, tmp_path: Path) -> None:
    result = run_locust(server, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = stats_rows(tmp_path)
    assert rows.keys() >= EVERY_ROW
    for name, row in rows.items():
        assert int(row["Failure Count"]) == 0, name
    for name in EVERY_ROW:
        assert int(rows[name]["Request Count"]) > 0, name
    assert (tmp_path / "report.html").stat().st_size > 0


def test_impossible_latency_gate_fails_the_run(server: ServerProcess, tmp_path: Path) -> None:
    result = run_locust(server, tmp_path, "-t", "3s", "--mix", "classify=1", "--slo-p95-ms", "1")
    assert result.returncode != 0
    assert "SLO breach: /v1/classify: p95" in result.stderr


def test_wrong_api_key_is_a_failure(server: ServerProcess, tmp_path: Path) -> None:
    result = run_locust(server, tmp_path, "-t", "2s", "--mix", "classify=1", key="wrong")
    assert result.returncode != 0
    assert int(stats_rows(tmp_path)["/v1/classify"]["Failure Count"]) > 0
    assert "HTTP 401" in (tmp_path / "locust_failures.csv").read_text(encoding="utf-8")


def test_step_load_shape_adds_users(server: ServerProcess, tmp_path: Path) -> None:
    flags = ["--step-load", "--mix", "classify=1", "--step-users", "1"]
    result = run_locust(server, tmp_path, *flags, "--step-seconds", "2", "--steps", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Ramping to 2 users" in result.stderr
    assert int(stats_rows(tmp_path)["/v1/classify"]["Request Count"]) > 0
