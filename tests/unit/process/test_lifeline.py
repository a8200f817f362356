"""The lifeline plugin acts only in processes vLLM starts under the launcher."""

from __future__ import annotations

from importlib import metadata
from types import SimpleNamespace

import pytest

from serving.process import lifeline
from serving.process.launcher import server_env


def _register(monkeypatch: pytest.MonkeyPatch, env: str | None, parent: object) -> list[int]:
    tied: list[int] = []
    monkeypatch.setattr(lifeline, "die_with_parent", tied.append)
    monkeypatch.setattr(lifeline.multiprocessing, "parent_process", lambda: parent)
    if env is None:
        monkeypatch.delenv(lifeline.LIFELINE, raising=False)
    else:
        monkeypatch.setenv(lifeline.LIFELINE, env)
    lifeline.register()
    return tied


def test_an_engine_process_under_the_launcher_is_tied_to_its_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _register(monkeypatch, "1", SimpleNamespace(pid=4242)) == [4242]


@pytest.mark.parametrize(("env", "parent"), [(None, SimpleNamespace(pid=4242)), ("1", None)])
def test_other_processes_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, env: str | None, parent: object
) -> None:
    assert _register(monkeypatch, env, parent) == []  # other vLLM programs; the API server


def test_the_launcher_switches_it_on_and_vllm_finds_it() -> None:
    assert server_env({}, [])[lifeline.LIFELINE] == "1"
    plugins = metadata.entry_points(group="vllm.general_plugins")
    assert [p.value for p in plugins if p.name == "seqgpt"] == ["serving.process.lifeline:register"]
