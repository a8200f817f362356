"""The in-process engine of a batch run: vLLM's AsyncLLM and the server's own SeqGPTService.

Same as the server, so a row gets the answer ``/v1/classify`` or ``/v1/extract`` would give:
the same ``SEQGPT_*`` settings, prompts, parsers, greedy decoding, in-flight bound, truncation
and errors; vLLM gets the server's defaults (``--max-model-len 2048`` unless given,
``--generation-config vllm``, on vLLM's CPU backend the CPU's own dtype unless ``--dtype`` is
given, said in one line) and, on CPU builds, the launcher's CPU environment
(``VLLM_CPU_KVCACHE_SPACE``, ``VLLM_CPU_NUM_OF_RESERVED_CPU``) unless already set.
Rows are submitted together, so vLLM's continuous batching runs them at full throughput; a row
the in-flight bound refuses waits for another row to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from serving.batch.row_requests import RowRequest, RunFailed, answer_body, error_of
from serving.core.errors import Overloaded
from serving.core.results import TaskResult
from serving.core.service import SeqGPTService
from serving.core.settings import Settings
from serving.process.server import DEFAULT_MAX_MODEL_LEN, dtype_default

if TYPE_CHECKING:
    # vLLM's engine seam, as vLLM types it (a type only: no import at run time).
    from vllm.engine.protocol import EngineClient

__all__ = [
    "EngineAnswerer",
    "EngineOptions",
    "build_service",
    "engine_answerer",
    "engine_source",
]

# What the launcher gives the server's processes that matters here: CPU tuning, and the
# resource tracker's notice about the engine's shared memory not shown.
_SERVER_VARIABLES = ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_NUM_OF_RESERVED_CPU", "PYTHONWARNINGS")
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_RETRY_AFTER_S = 1.0  # vLLM's queue-full refusal (only with --max-num-queued-reqs)
_RECHECK_S = 0.5  # a refused row looks again this often even if no row finished


@dataclass(frozen=True)
class EngineOptions:
    """The vLLM engine flags a batch run takes (None: the server's default, else vLLM's)."""

    model: str
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] | None = None
    enforce_eager: bool = False
    max_num_seqs: int | None = None


def build_service(engine: EngineClient, settings: Settings) -> SeqGPTService:
    """The service the plugin builds around the server's engine client (same bound and checks)."""
    try:
        return SeqGPTService.for_engine(engine, settings)
    except ValueError as exc:
        raise RunFailed(str(exc)) from None


def engine_source(
    model: str, flags: Mapping[str, Any]
) -> Callable[[], contextlib.AbstractAsyncContextManager[EngineAnswerer]]:
    """What ``run_batch`` starts: the engine on ``model`` with vLLM ``flags`` (EngineOptions)."""
    options = EngineOptions(model, **flags)
    return lambda: engine_answerer(options, Settings())


def _server_environment() -> None:
    """The launcher's environment defaults, for the engine processes this one spawns."""
    # the launcher's environment: only when an engine starts.
    from serving.process.launcher import server_env

    env = server_env(os.environ, [])
    for name in _SERVER_VARIABLES:
        if name in env:
            os.environ[name] = env[name]


@contextlib.asynccontextmanager
async def engine_answerer(
    options: EngineOptions, settings: Settings
) -> AsyncIterator[EngineAnswerer]:
    """Start vLLM's AsyncLLM on ``options.model``, yield an answerer on it, shut it down after."""
    _server_environment()
    # vLLM: only when an in-process engine starts (seconds of import).
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    dtype, line = dtype_default(options.dtype)
    if line:
        _say(line)
    args = AsyncEngineArgs(
        model=options.model,
        max_model_len=options.max_model_len,
        dtype=dtype or options.dtype or "auto",
        enforce_eager=options.enforce_eager,
        max_num_seqs=options.max_num_seqs,
        # The server's --generation-config vllm: the service sets greedy decoding itself.
        generation_config="vllm",
        disable_log_stats=True,
    )
    _say(f"starting vLLM on {options.model} (a stop waits until it is up) ...")
    started = time.monotonic()
    # A stop signal during vLLM's start-up would interrupt it anywhere; held until it is up.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        engine = AsyncLLM.from_engine_args(args)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held stop acts here
        _say(f"engine ready in {time.monotonic() - started:.0f} s")
        batch_size = engine.vllm_config.scheduler_config.max_num_seqs
        yield EngineAnswerer(build_service(engine, settings), batch_size)
    finally:
        engine.shutdown()


def _say(line: str) -> None:
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


class EngineAnswerer:
    """Answers rows with a ``SeqGPTService``; a row over the in-flight bound waits its turn."""

    def __init__(self, service: SeqGPTService, batch_size: int) -> None:
        self._service = service
        self._finished = asyncio.Condition()
        # Rows to keep in flight by default: the engine's batch (max_num_seqs); more would only
        # wait in its queue, and count against their deadline there.
        self.default_concurrency = batch_size

    async def _run(self, request: RowRequest) -> TaskResult:
        """The row's result: its labels' task, or its schema's tree."""
        service, rid = self._service, request.request_id
        if request.schema is not None:
            schema = service.check_schema(request.schema)
            return await service.run_schema(request.text, schema, request_id=rid)
        labels = request.labels if request.labels is not None else []  # 400: no labels
        return await service.run(request.task, request.text, labels, request_id=rid)

    async def answer(self, request: RowRequest) -> dict[str, Any]:
        """The REST answer of one row, or its error body."""
        # vLLM: loaded already where an engine answers.
        from vllm.exceptions import GracefulHTTPError, RetryableRequestError
        from vllm.v1.engine.exceptions import EngineDeadError

        while True:
            try:
                result = await self._run(request)
            except Overloaded:
                await self._wait_for_a_finish()
                continue
            except (GracefulHTTPError, RetryableRequestError):  # the engine's queue is full
                await asyncio.sleep(_RETRY_AFTER_S)
                continue
            except EngineDeadError as exc:
                raise RunFailed("the engine stopped; rerun the same command to resume") from exc
            except Exception as exc:
                await self._notify()
                return {"error": error_of(exc)["error"]}
            await self._notify()
            return answer_body(result)

    async def _notify(self) -> None:
        async with self._finished:
            self._finished.notify_all()

    async def _wait_for_a_finish(self) -> None:
        # The timeout covers a finish notified between the refusal and this wait.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_RECHECK_S), self._finished:
                await self._finished.wait()
