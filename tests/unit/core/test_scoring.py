"""``ReadTurns``: score reads in the engine at once, fewer beside a task prompt, in order."""

from __future__ import annotations

import asyncio

from serving.core.scoring import ReadTurns


async def _hold(turns: ReadTurns, name: str, order: list[str], release: asyncio.Event) -> None:
    async with turns.read():
        order.append(name)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_reads_fill_idle_turns_and_the_rest_wait_in_order() -> None:
    async def run() -> list[str]:
        turns, order, release = ReadTurns(busy=1, idle=2), [], asyncio.Event()
        reads = [asyncio.create_task(_hold(turns, str(i), order, release)) for i in range(4)]
        await _settle()
        assert (order, turns.reads) == (["0", "1"], 2)
        release.set()
        await asyncio.gather(*reads)
        assert turns.reads == 0
        return order

    assert asyncio.run(run()) == ["0", "1", "2", "3"]


def test_beside_a_task_prompt_reads_get_busy_turns_until_it_leaves() -> None:
    async def run() -> None:
        turns, order, release = ReadTurns(busy=1, idle=3), [], asyncio.Event()
        with turns.task():
            first = asyncio.create_task(_hold(turns, "a", order, release))
            await _settle()
            others = [asyncio.create_task(_hold(turns, n, order, release)) for n in "bc"]
            await _settle()
            assert order == ["a"]  # one read beside the task prompt
        await _settle()
        assert order == ["a", "b", "c"]  # the task prompt left: idle turns
        release.set()
        await asyncio.gather(first, *others)

    asyncio.run(run())


def test_a_read_that_leaves_while_waiting_takes_no_turn() -> None:
    async def run() -> None:
        turns, order, release = ReadTurns(busy=1, idle=1), [], asyncio.Event()
        held = asyncio.create_task(_hold(turns, "a", order, release))
        left = asyncio.create_task(_hold(turns, "b", order, release))
        last = asyncio.create_task(_hold(turns, "c", order, release))
        await _settle()
        left.cancel()
        release.set()
        await asyncio.gather(held, last)
        assert order == ["a", "c"]
        assert turns.reads == 0

    asyncio.run(run())
