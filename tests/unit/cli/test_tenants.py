"""``seqgpt-serve tenants new``: the key printed once, a block that parses back with its digest."""

from __future__ import annotations

import pytest

from serving.cli.app import main
from serving.core.tenants import key_digest, parse_tenants


def test_a_new_tenant_gets_a_key_once_and_a_block_with_its_digest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["tenants", "new", "search", "--scopes", "tasks,completions"]
    argv += ["--requests-per-minute", "600", "--prompt-tokens-per-minute", "200000"]
    argv += ["--weight", "2", "--priority", "batch"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    key, block = lines[0], "\n".join(lines[1:])
    assert len(key) >= 43
    assert out.count(key) == 1
    (tenant,) = parse_tenants(block).values()
    assert tenant.name == "search"
    assert tenant.key_sha256 == key_digest(key)
    assert tenant.scopes == {"tasks", "completions"}
    assert (tenant.requests_per_minute, tenant.prompt_tokens_per_minute) == (600, 200000)
    assert (tenant.weight, tenant.priority) == (2.0, "batch")


def test_every_call_makes_another_key(capsys: pytest.CaptureFixture[str]) -> None:
    keys = set()
    for _ in range(3):
        assert main(["tenants", "new", "a"]) == 0
        keys.add(capsys.readouterr().out.splitlines()[1])
    assert len(keys) == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["tenants", "new", "Search"],
        ["tenants", "new", "a.b"],
        ["tenants", "new", "default"],
        ["tenants", "new", "a", "--scopes", "admin"],
        ["tenants", "new", "a", "--priority", "urgent"],
        ["tenants", "new", "a", "--requests-per-minute", "0"],
        ["tenants", "new", "a", "--weight", "-1"],
    ],
)
def test_a_bad_tenant_is_one_line_and_exit_2_with_no_key(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
