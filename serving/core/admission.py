"""The in-flight bound: how many task prompts one API process lets into the engine at once, and
how the tenants and the two levels (interactive, batch) share it.

A request takes its prompts from the bound before any of its work (counted from its labels, and
from its windows once its text is planned) and gives them back when it ends. One that could
never fit is refused with ``TooLarge`` (413), one that does not fit now with ``Overloaded``
(429). One event loop, no locks.

Sharing, after Kubernetes' API Priority and Fairness (assured shares, borrowing idle ones):

- **Fair shares among tenants.** A tenant is *active* while it holds prompts or for
  ``ACTIVE_S`` after it was last refused (a client retrying after a 429 still has demand, and
  its retry comes back within a second or so). Each active tenant's share is the bound times its
  weight over the active tenants' weights. A request is admitted if, after it, the free room
  still covers every *other* active tenant's unused share (the reservation), even if that takes
  its own tenant past its share: idle capacity goes to whoever is active (work-conserving), and a
  tenant that comes back gets its share as the others' requests end. A tenant holding nothing is
  admitted whenever its request fits the free room, so a request larger than its tenant's share
  is never refused for ever.
- **Two levels.** While interactive work is active (interactive prompts held, or an interactive
  request refused within ``ACTIVE_S``), batch work (``Who.batch``) may hold at most the bound
  less ``INTERACTIVE_RESERVE`` of it beside other batch work, so interactive requests find room
  beside a batch job; with no interactive work, batch work borrows the whole bound (a batch job
  alone keeps the whole server, and a batch request alone is admitted whenever it fits). So an
  interactive request after a quiet spell may find the bound full of batch work once: its 429
  makes interactive work active, and its retry finds the reserve as batch prompts end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from serving.core.errors import Overloaded, TooLarge
from serving.core.tenants import Who

__all__ = ["ACTIVE_S", "INTERACTIVE_RESERVE", "LEVELS", "Admission", "Held"]

ACTIVE_S = 1.0
"""How long a refused tenant counts as active (its unused share reserved for its retry)."""
INTERACTIVE_RESERVE = 0.25
"""The part of the bound batch work leaves free beside other batch work while interactive work is
active."""
LEVELS = ("interactive", "batch")


@dataclass
class Held:
    """The prompts a request holds of the in-flight bound, and for whom."""

    prompts: int = 0
    who: Who = field(default_factory=Who)


class Admission:
    """At most ``max_inflight`` task prompts admitted at once, shared by weight among the active
    tenants. ``schema_max_entities`` (entities expanded per field) is named when a schema's count
    is refused; ``clock`` (seconds, monotonic) is for tests."""

    def __init__(
        self,
        max_inflight: int,
        schema_max_entities: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_inflight = max_inflight
        self.inflight = 0
        """Task prompts admitted and not finished yet."""
        self._schema_max_entities = schema_max_entities
        self._clock = clock
        self._held: dict[tuple[str, str], int] = {}
        """Prompts held per (tenant, level)."""
        self._weights: dict[str, float] = {}
        """The weight each tenant last came with."""
        self._refused: dict[str, float] = {}
        """When each tenant was last refused."""
        self._interactive_refused = -math.inf
        """When an interactive request was last refused."""
        self.batch_limit = max(1, max_inflight - math.ceil(max_inflight * INTERACTIVE_RESERVE))
        """The most prompts batch work holds beside other batch work while interactive work is
        active."""

    def holding(self) -> dict[str, dict[str, int]]:
        """Prompts held now per tenant and level (tenants holding none left out)."""
        tenants: dict[str, dict[str, int]] = {}
        for (tenant, level), prompts in self._held.items():
            tenants.setdefault(tenant, dict.fromkeys(LEVELS, 0))[level] = prompts
        return tenants

    def level_inflight(self, level: str) -> int:
        """Prompts held now at ``level`` (``interactive`` or ``batch``)."""
        return sum(n for (_, lv), n in self._held.items() if lv == level)

    def refusal_now(self, who: Who | None = None) -> Overloaded | None:
        """The 429 a request for ``who`` gets now, whatever its body (there is no room for one
        prompt, the least any request needs), else None."""
        who = who or Who()
        problem = self._refusal(who, 1)
        if problem is not None:
            self._note_refused(who)
        return problem

    def _note_refused(self, who: Who) -> None:
        now = self._clock()
        self._refused[who.tenant] = now
        self._weights[who.tenant] = who.weight
        if not who.batch:
            self._interactive_refused = now

    def _interactive_active(self) -> bool:
        """Whether batch work keeps the reserve free: interactive prompts are held, or an
        interactive request was refused within ``ACTIVE_S`` (its retry comes)."""
        recent = self._clock() - self._interactive_refused <= ACTIVE_S
        return recent or self.level_inflight("interactive") > 0

    def _overloaded(self) -> Overloaded:
        return Overloaded(
            f"The server is at its limit of {self.max_inflight} prompts in flight; "
            "retry in a moment."
        )

    def _tenant_held(self, tenant: str) -> int:
        return sum(n for (t, _), n in self._held.items() if t == tenant)

    def _reserved(self, tenant: str, weight: float) -> int:
        """The other active tenants' unused shares, were ``tenant`` (of ``weight``) admitted."""
        now = self._clock()
        for name, when in list(self._refused.items()):
            if now - when > ACTIVE_S:
                del self._refused[name]
        holders = {t for (t, _), n in self._held.items() if n > 0}
        others = (holders | set(self._refused)) - {tenant}
        if not others:
            return 0
        total = weight + sum(self._weights.get(t, 1.0) for t in others)
        unused = (
            self.max_inflight * self._weights.get(t, 1.0) / total - self._tenant_held(t)
            for t in others
        )
        return math.floor(sum(max(0.0, u) for u in unused))

    def _refusal(self, who: Who, more: int) -> Overloaded | None:
        """Why ``more`` prompts for ``who`` are not admitted now, else None."""
        after = self.inflight + more
        if after > self.max_inflight:
            return self._overloaded()
        mine = self._tenant_held(who.tenant)
        if mine and self.max_inflight - after < self._reserved(who.tenant, who.weight):
            return Overloaded(
                f"The server's {self.max_inflight} prompts in flight are shared among the "
                f"tenants using it, and tenant {who.tenant!r} holds its share; retry in a moment."
            )
        batch = self.level_inflight("batch")
        if who.batch and batch and batch + more > self.batch_limit and self._interactive_active():
            return Overloaded(
                f"Batch work may hold {self.batch_limit} of the server's {self.max_inflight} "
                "prompts in flight while interactive requests come; retry in a moment."
            )
        return None

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

    def check_room(self, prompts: int, who: Who | None = None, param: str = "text") -> None:
        """Refuse ``prompts`` (one window's) now if they could never be admitted or do not fit
        now, taking nothing."""
        self.hold(Held(who=who or Who()), prompts, 1, take=False, param=param)

    @contextmanager
    def held(self, prompts: int, who: Who | None = None, param: str = "text") -> Iterator[Held]:
        """Hold ``prompts`` of the bound for ``who`` (413 or 429 if they cannot be), and what the
        hold grows to, until the block ends."""
        held = Held(who=who or Who())
        self.hold(held, prompts, 1, param=param)
        try:
            yield held
        finally:
            self._take(held.who, -held.prompts)

    def hold(
        self, held: Held, prompts: int, windows: int, *, take: bool = True, param: str = "text"
    ) -> None:
        """Make ``held`` hold ``prompts`` (``take=False``: only ask whether it could)."""
        self.check_bound(prompts, windows, param)
        more = prompts - held.prompts
        problem = self._refusal(held.who, more) if more > 0 else None
        if problem is not None:
            self._note_refused(held.who)
            raise problem
        if take:
            self._take(held.who, more)
            held.prompts = prompts

    def _take(self, who: Who, prompts: int) -> None:
        """Count ``prompts`` more (or fewer, if negative) held for ``who``."""
        key = (who.tenant, LEVELS[who.batch])
        count = self._held.get(key, 0) + prompts
        if count:
            self._held[key] = count
            self._weights[who.tenant] = who.weight
        else:
            self._held.pop(key, None)  # the map holds active tenants only
        self.inflight += prompts
