"""A step-load shape: add ``--step-users`` users every ``--step-seconds``, ``--steps`` times.

Locust uses a shape class found in any of its ``-f`` files, so this one lives in its own file
and is opted into with ``-f loadtest/locustfile.py,loadtest/shapes.py`` (``run.py --step-load``).
The run ends after the last step; ``--users``/``--run-time`` are ignored while it is active.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

__all__ = ["StepLoadShape"]


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("step load (loadtest/shapes.py)")
    group.add_argument("--step-users", type=int, default=4, help="Users added per step.")
    group.add_argument("--step-seconds", type=float, default=30.0, help="Length of a step.")
    group.add_argument("--steps", type=int, default=4, help="Number of steps.")


class StepLoadShape(LoadTestShape):
    """Users grow in equal steps: ``step_users``, ``2 * step_users`` ... then the run stops."""

    def tick(self) -> tuple[int, float] | None:
        """The user count for the current step, or ``None`` after the last one."""
        options = self.runner.environment.parsed_options
        step = int(self.get_run_time() // options.step_seconds)
        if step >= options.steps:
            return None
        users = (step + 1) * options.step_users
        return users, float(options.step_users)
