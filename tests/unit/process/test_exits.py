"""The one way a server process ends: how its code ended, turned into an exit status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from serving.process import exits


class Exited(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _raise(error: BaseException) -> Callable[[], None]:
    def run() -> None:
        raise error

    return run


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (lambda: None, 0),
        (_raise(SystemExit(3)), 3),
        (_raise(SystemExit(None)), 0),
        (_raise(SystemExit("a message")), 1),
        (_raise(KeyboardInterrupt()), 130),
    ],
)
def test_exit_after_exits_with_the_status_its_end_means(
    run: Callable[[], None], status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(exits, "exit_quietly", exit_)
    with pytest.raises(Exited) as ended:
        exits.exit_after(run)
    assert ended.value.status == status
