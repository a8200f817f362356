"""The in-process engine of a ``--model`` batch starts as the server does: on the CPU backend an
unset ``--dtype`` is the CPU's own, said in one line; a given one stands."""

from __future__ import annotations

import asyncio

import pytest
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.v1.engine.async_llm import AsyncLLM

from serving.batch.engine import EngineOptions, engine_answerer
from serving.core.cpu import choose_dtype, cpu_facts, dtype_line
from serving.core.settings import Settings


class _Started(Exception):
    """Raised where vLLM would start: the engine's arguments are all the test needs."""


async def _start(options: EngineOptions) -> None:
    async with engine_answerer(options, Settings()):
        pass


@pytest.mark.parametrize("given", [None, "half", "auto"])
def test_the_engine_gets_the_cpus_dtype_unless_given(
    given: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def start(args: AsyncEngineArgs, **_kwargs: object) -> None:
        asked.append(args.dtype)
        raise _Started

    monkeypatch.setattr(AsyncLLM, "from_engine_args", start)
    monkeypatch.setattr("serving.batch.engine._server_environment", lambda: None)
    with pytest.raises(_Started):
        asyncio.run(_start(EngineOptions("./model", dtype=given)))  # type: ignore[arg-type]
    choice = choose_dtype(cpu_facts())
    assert asked == [given or choice.dtype]
    assert dtype_line(given, choice) in capsys.readouterr().err.splitlines()
