"""``seqgpt-serve tenants new NAME``: a fresh key for a new tenant, and the TOML block to paste
into the tenants file (``SEQGPT_TENANTS_FILE``, ``serving.core.tenants``).

The key is printed once, on its own line, and is never written anywhere: the block holds only
its SHA-256. Lose it and make a new one.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from pydantic import ValidationError

from serving.cli.common import fail
from serving.core.tenants import SCOPES, Tenant, key_digest

__all__ = ["add_tenants_commands", "new_tenant", "tenant_block"]

_KEY_BYTES = 32


def tenant_block(tenant: Tenant) -> str:
    """The tenant's table in the tenants file's TOML (the key's digest, never a key)."""
    lines = [f"[tenants.{tenant.name}]", f'key_sha256 = "{tenant.key_sha256}"']
    scopes = ", ".join(f'"{scope}"' for scope in SCOPES if scope in tenant.scopes)
    lines.append(f"scopes = [{scopes}]")
    for field in ("requests_per_minute", "prompt_tokens_per_minute"):
        value = getattr(tenant, field)
        if value is not None:
            lines.append(f"{field} = {value}")
    lines.append(f"weight = {tenant.weight:g}")
    lines.append(f'priority = "{tenant.priority}"')
    return "\n".join(lines)


def new_tenant(name: str, key: str, **fields: object) -> Tenant:
    """The tenant ``name`` for ``key``; ``ValueError`` with one line if a field is refused."""
    try:
        return Tenant(name=name, key_sha256=key_digest(key), **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"{where}: {error['msg']}") from None


def add_tenants_commands(app: typer.Typer) -> None:
    """Add ``tenants new`` to ``app``."""
    tenants = typer.Typer(help="Make keys for the tenants file (SEQGPT_TENANTS_FILE).")
    app.add_typer(tenants, name="tenants")

    @tenants.command("new")
    def new(
        name: Annotated[str, typer.Argument(help="The tenant's name: a-z, 0-9, '_', '-'.")],
        scopes: Annotated[
            str,
            typer.Option(help=f"Comma-separated scopes, of: {', '.join(SCOPES)}."),
        ] = "tasks",
        priority: Annotated[str, typer.Option(help="interactive or batch.")] = "interactive",
        weight: Annotated[float, typer.Option(help="Share under contention.")] = 1.0,
        requests_per_minute: Annotated[
            int | None, typer.Option(help="Requests a minute at most (default: no limit).")
        ] = None,
        prompt_tokens_per_minute: Annotated[
            int | None, typer.Option(help="Prompt tokens a minute at most (default: no limit).")
        ] = None,
    ) -> None:
        """Print a new key once, then the TOML block (with the key's SHA-256) to paste."""
        key = secrets.token_urlsafe(_KEY_BYTES)
        chosen = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            tenant = new_tenant(
                name,
                key,
                scopes=frozenset(chosen),
                priority=priority,
                weight=weight,
                requests_per_minute=requests_per_minute,
                prompt_tokens_per_minute=prompt_tokens_per_minute,
            )
        except ValueError as exc:
            fail(f"tenant {name!r}: {exc}")
        if tenant.name in ("default", "metrics"):
            fail(f"the name {name!r} belongs to the server's own keys; choose another")
        typer.echo(f"# The key of tenant {name!r}, shown this once (the file holds its SHA-256):")
        typer.echo(key)
        typer.echo("# Add to the tenants file:")
        typer.echo(tenant_block(tenant))
