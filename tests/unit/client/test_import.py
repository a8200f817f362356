"""The client is light: importing it loads neither the engine nor the server's web stack."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_client_loads_no_engine_and_no_server() -> None:
    heavy = ("vllm", "torch", "transformers", "fastapi", "starlette", "gradio", "uvicorn")
    code = f"import sys, serving.client; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
