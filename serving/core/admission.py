"""The in-flight bound: how many task prompts one API process lets into the engine at once.

A request takes its prompts from the bound before any of its work (counted from its labels, and
from its windows once its text is planned) and gives them back when it ends. One that could
never fit is refused with ``TooLarge`` (413), one that does not fit now with ``Overloaded``
(429). One event loop, no locks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from serving.core.errors import Overloaded, TooLarge

__all__ = ["Admission", "Held"]


@dataclass
class Held:
    """The prompts a request holds of the in-flight bound."""

    prompts: int = 0


class Admission:
    """At most ``max_inflight`` task prompts admitted at once. ``schema_max_entities`` (entities
    expanded per field) is named when a schema's count is refused."""

    def __init__(self, max_inflight: int, schema_max_entities: int) -> None:
        self.max_inflight = max_inflight
        self.inflight = 0
        """Task prompts admitted and not finished yet."""
        self._schema_max_entities = schema_max_entities

    def refusal_now(self) -> Overloaded | None:
        """The 429 every request gets now, whatever its body (the bound is full: each needs a
        prompt at least), else None."""
        return self._overloaded() if self.inflight >= self.max_inflight else None

    def _overloaded(self) -> Overloaded:
        return Overloaded(
            f"The server is at its limit of {self.max_inflight} prompts in flight; "
            "retry in a moment."
        )

    def check_bound(self, prompts: int, windows: int, param: str = "text") -> None:
        """Refuse a request that could never be admitted, whatever else runs (413, not 429)."""
        if prompts <= self.max_inflight:
            return
        if param == "schema":
            message = (
                f"This schema may need {prompts} prompts in flight at once (up to "
                f"{self._schema_max_entities} entities expanded per field); this server admits "
                f"at most {self.max_inflight}. Send a smaller schema."
            )
            raise TooLarge(message, param=param)
        text = f"its text in {windows} windows; " if windows > 1 else ""
        message = (
            f"This request needs {prompts} prompts in flight at once ({text}label chunks, "
            f"beams and scored labels count); this server admits at most "
            f"{self.max_inflight} prompts at once. Send a shorter text or fewer labels."
        )
        raise TooLarge(message, param="text")

    def check_room(self, prompts: int, param: str = "text") -> None:
        """Refuse ``prompts`` (one window's) now if they could never be admitted or do not fit
        now, taking nothing."""
        self.hold(Held(), prompts, 1, take=False, param=param)

    @contextmanager
    def held(self, prompts: int, param: str = "text") -> Iterator[Held]:
        """Hold ``prompts`` of the bound (413 or 429 if they cannot be), and what the hold
        grows to, until the block ends."""
        held = Held()
        self.hold(held, prompts, 1, param=param)
        try:
            yield held
        finally:
            self.inflight -= held.prompts

    def hold(
        self, held: Held, prompts: int, windows: int, *, take: bool = True, param: str = "text"
    ) -> None:
        """Make ``held`` hold ``prompts`` (``take=False``: only ask whether it could)."""
        self.check_bound(prompts, windows, param)
        more = prompts - held.prompts
        if self.inflight + more > self.max_inflight:
            raise self._overloaded()
        if take:
            self.inflight += more
            held.prompts = prompts
