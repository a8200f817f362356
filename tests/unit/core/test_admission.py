"""``Admission``'s shares: the bound by weight among the active tenants, the rest to whoever is
active, and a reserve batch work leaves for interactive requests (a fake clock)."""

from __future__ import annotations

from collections import Counter, deque

import pytest

from serving.core.admission import ACTIVE_S, Admission, Held
from serving.core.errors import Overloaded
from serving.core.tenants import Who

BOUND = 16


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fill(admission: Admission, who: Who, holds: list[Held]) -> int:
    """Admit one-prompt requests for ``who`` until one is refused; how many were admitted."""
    admitted = 0
    while True:
        held = Held(who=who)
        try:
            admission.hold(held, 1, 1)
        except Overloaded:
            return admitted
        holds.append(held)
        admitted += 1


def _end(admission: Admission, held: Held) -> None:
    """The request ``held`` ends: its prompts go back (as ``Admission.held``'s block ending)."""
    admission._take(held.who, -held.prompts)


def _saturate(weights: dict[str, float], steps: int = 2000) -> Counter[str]:
    """Tenants whose clients always want more: each step the oldest prompt ends and every
    tenant retries (in turn, whose turn first rotating); the prompts each tenant completed."""
    clock = Clock()
    admission = Admission(BOUND, 8, clock=clock)
    whos = [Who(name, weight) for name, weight in weights.items()]
    running: deque[Held] = deque()
    done: Counter[str] = Counter()
    for step in range(steps):
        clock.now += 0.01
        order = whos[step % len(whos) :] + whos[: step % len(whos)]
        for who in order:
            new: list[Held] = []
            _fill(admission, who, new)
            running.extend(new)
        finished = running.popleft()
        _end(admission, finished)
        done[finished.who.tenant] += 1
    return done


@pytest.mark.parametrize(("weights", "first"), [((1, 1), 0.5), ((3, 1), 0.75)], ids=["1:1", "3:1"])
def test_tenants_saturating_complete_by_their_weights(
    weights: tuple[float, float], first: float
) -> None:
    done = _saturate({"a": weights[0], "b": weights[1]})
    assert done["a"] / done.total() == pytest.approx(first, abs=0.05)


def test_a_lone_tenant_takes_the_whole_bound() -> None:
    admission = Admission(BOUND, 8, clock=Clock())
    assert _fill(admission, Who("a"), []) == BOUND
    assert admission.refusal_now(Who("a")) is not None


def test_idle_capacity_goes_to_the_active_tenants() -> None:
    """Shares are among the tenants active now: a and b split the bound half and half while a
    third tenant with the same weight is idle, and a takes it all again once b has left."""
    clock = Clock()
    admission = Admission(BOUND, 8, clock=clock)
    a_holds: list[Held] = []
    b_holds: list[Held] = []
    admission.refusal_now(Who("c"))  # c asks while there is room: not refused, not active
    assert _fill(admission, Who("a"), a_holds) == BOUND
    assert admission.refusal_now(Who("b")) is not None  # b has demand now
    for held in a_holds[: BOUND // 2]:  # half of a's requests end
        _end(admission, held)
    assert _fill(admission, Who("a"), []) == 0  # kept for b's retry: a holds its share
    assert _fill(admission, Who("b"), b_holds) == BOUND // 2
    for held in b_holds:
        _end(admission, held)
    clock.now += ACTIVE_S + 0.1  # b refused itself just now: it stays active a moment
    assert _fill(admission, Who("a"), []) == BOUND // 2


def test_a_refused_tenant_stays_active_for_its_retry() -> None:
    clock = Clock()
    admission = Admission(BOUND, 8, clock=clock)
    holds: list[Held] = []
    _fill(admission, Who("a"), holds)
    assert admission.refusal_now(Who("b")) is not None
    for held in holds[:4]:
        _end(admission, held)
    clock.now += ACTIVE_S / 2
    assert admission.refusal_now(Who("a")) is not None  # b's 4 of its 8 are kept for it
    clock.now += ACTIVE_S
    assert admission.refusal_now(Who("a")) is None  # b did not come back: a may take them


def test_a_tenant_holding_nothing_may_send_a_request_larger_than_its_share() -> None:
    admission = Admission(BOUND, 8, clock=Clock())
    with admission.held(2, Who("b")):
        assert admission.refusal_now(Who("a")) is None
        refused = pytest.raises(Overloaded, match="tenant 'a' holds its share")
        with admission.held(12, Who("a")), refused:  # a's share is 8: never admitted else
            admission.check_room(1, Who("a"))


def test_batch_work_leaves_a_reserve_while_interactive_work_is_there() -> None:
    clock = Clock()
    admission = Admission(BOUND, 8, clock=clock)
    batch = Who("a", batch=True)
    with admission.held(1, Who("a")):  # an interactive request in flight
        assert _fill(admission, batch, []) == BOUND * 3 // 4
        refusal = admission.refusal_now(batch)
        assert refusal is not None
        assert "Batch work may hold 12" in str(refusal)
        assert _fill(admission, Who("a"), []) == BOUND // 4 - 1  # the same tenant's
        assert admission.holding() == {"a": {"interactive": 4, "batch": 12}}


def test_with_no_interactive_work_batch_borrows_the_reserve_until_one_is_refused() -> None:
    clock = Clock()
    admission = Admission(BOUND, 8, clock=clock)
    batch = Who("a", batch=True)
    holds: list[Held] = []
    assert _fill(admission, batch, holds) == BOUND
    assert admission.refusal_now(Who("a")) is not None  # the first interactive request: 429
    for held in holds[:8]:  # batch work ends; more comes, but only up to 3/4 of the bound
        _end(admission, held)
    assert _fill(admission, batch, []) == BOUND * 3 // 4 - BOUND // 2
    assert _fill(admission, Who("a"), []) == BOUND // 4  # the retry finds the reserve


def test_a_batch_request_alone_may_take_the_whole_bound() -> None:
    admission = Admission(BOUND, 8, clock=Clock())
    with admission.held(BOUND, Who("a", batch=True)) as held:
        assert held.prompts == BOUND
    assert admission.inflight == 0
    assert admission.holding() == {}


def test_the_default_tenant_and_the_old_message_when_the_bound_is_full() -> None:
    admission = Admission(4, 8)
    with admission.held(4):
        refusal = admission.refusal_now()
        assert refusal is not None
        assert "limit of 4 prompts in flight" in str(refusal)
        assert admission.holding() == {"default": {"interactive": 4, "batch": 0}}
