"""The secret the web UI's session cookies are signed with (``serving.ui.auth``).

Never a key and never a key's digest (the tenants file holds those: whoever reads it could
forge a cookie). With ``SEQGPT_UI_SESSION_DIR`` set (``seqgpt-serve serve`` always sets it) it
is 32 random bytes in ``ui-secret`` there, owner-only, made by the first API process that needs
it and read by the others, so a cookie one process issued is good in all of them; without the
folder, it is derived from the server's plain keys (the same in every process), or random per
process when there is none (a second API process then refuses the first one's cookies).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["server_secret"]

_SECRET_FILE = "ui-secret"
_SECRET_BYTES = 32


def server_secret(folder: Path | None, keys: list[str]) -> bytes:
    """The key cookies are signed with: shared through ``folder`` by the API processes, else
    derived from the plain keys (the same in every process), else this process's own."""
    if folder is not None:
        return _shared_secret(folder)
    if keys:
        joined = "\n".join(sorted(keys)).encode("utf-8", "surrogatepass")
        return hmac.new(b"seqgpt-ui-secret", joined, hashlib.sha256).digest()
    return secrets.token_bytes(_SECRET_BYTES)


def _shared_secret(folder: Path) -> bytes:
    """The secret in ``folder``, made now (``0600``, linked in whole) if no process made it."""
    path = folder / _SECRET_FILE
    if not path.exists():
        draft = folder / f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(_SECRET_BYTES))
        try:
            os.link(draft, path)  # whole or not at all; the first process's wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    secret = path.read_bytes()
    if len(secret) < _SECRET_BYTES:
        raise OSError(f"{path} holds no secret of {_SECRET_BYTES} bytes")
    return secret
