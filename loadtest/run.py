"""Run the locust suite headless and keep its CSV and HTML reports.

    python -m loadtest.run --host http://localhost:8000 [locust flags ...]
    python -m loadtest.run                       # starts a server on the tiny test model

Without ``--host`` it makes the tiny random-weight checkpoint if missing, starts
``seqgpt-serve`` on a free port, waits for ``/health``, runs locust, and stops the server.
Flags it does not know go to locust (``-u``, ``-t``, ``--mix``, ``--slo-p95-ms`` ...). The exit
code is locust's: non-zero when a request failed beyond the allowed ratio or an SLO gate broke.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from loadtest.server import ServerProcess, ensure_model

__all__ = ["locust_command", "main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="Server to test; omit to start one on the tiny model.")
    parser.add_argument("--out", type=Path, help="Report folder (default loadtest/reports/<time>).")
    parser.add_argument("--api-key", default=os.environ.get("LOCUST_API_KEY"), help="Bearer key.")
    parser.add_argument("--model", type=Path, default=ROOT / ".models" / "tiny")
    parser.add_argument("--size", default="tiny", help="Test model size to make if missing.")
    parser.add_argument("--port", type=int, help="Port for the started server (default: free).")
    parser.add_argument("--step-load", action="store_true", help="Use the step-load shape.")
    parser.add_argument("--server-arg", action="append", default=[], help="Flag for vLLM.")
    return parser.parse_known_args(argv)


def locust_command(host: str, out: Path, *, step_load: bool, extra: list[str]) -> list[str]:
    """The headless locust command line writing ``locust_*.csv`` and ``report.html`` to ``out``."""
    files = "loadtest/locustfile.py" + (",loadtest/shapes.py" if step_load else "")
    command = [sys.executable, "-m", "locust", "--config", "loadtest/locust.conf", "-f", files]
    command += ["--headless", "--host", host, "--csv", str(out / "locust")]
    return [*command, "--html", str(out / "report.html"), *extra]


def _run_locust(command: list[str], api_key: str | None) -> int:
    # The key goes through the environment (locustfile: env_var LOCUST_API_KEY), not argv,
    # so it does not show in process lists or in the printed command.
    env = {**os.environ, "LOCUST_API_KEY": api_key} if api_key else dict(os.environ)
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """Run locust against ``--host`` or a freshly started test server; return its exit code."""
    args, extra = _parse(argv)
    out = (args.out or HERE / "reports" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.host:
        command = locust_command(args.host, out, step_load=args.step_load, extra=extra)
        code = _run_locust(command, args.api_key)
    else:
        model = ensure_model(args.model, args.size)
        server = ServerProcess(
            model,
            port=args.port,
            api_key=args.api_key,
            extra_args=tuple(args.server_arg),
            log_path=out / "server.log",
        )
        print(f"starting seqgpt-serve on {model} at {server.url} ...", flush=True)
        with server:
            command = locust_command(server.url, out, step_load=args.step_load, extra=extra)
            code = _run_locust(command, args.api_key)
    print(f"reports in {out} (locust exit code {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
