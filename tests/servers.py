"""How the test suite serves the tiny checkpoint.

Every test server and in-process engine serves the tiny checkpoint in fp32
(``tiny_server``, ``DTYPE_FLAGS``). The checkpoint is stored in bf16, vLLM's CPU default, but
bf16 is fast only where the CPU has it (AVX-512 bf16 / AMX): on an AVX2-only CI machine torch's
bf16 matmul runs ~30x slower than fp32. fp32 is fast everywhere, the same on every machine, and
what the parity tests compare against (transformers in fp32); widening bf16 to fp32 is exact and
vLLM logs it per tensor only at debug level. The product's own default is untouched: benchmarks
and ``make serve`` serve what vLLM picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.server import ServerProcess

__all__ = ["DTYPE", "DTYPE_FLAGS", "tiny_server"]

DTYPE = "float32"
DTYPE_FLAGS = ("--dtype", DTYPE)


def tiny_server(model: Path, **options: Any) -> ServerProcess:
    """A ``ServerProcess`` serving ``model`` (the tiny checkpoint) as the test suite does."""
    return ServerProcess(model, dtype=DTYPE, **options)
