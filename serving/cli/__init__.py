"""The ``seqgpt-serve`` command: a typer app over the launcher, the batch jobs and the status.

Owns the command line (``app``: ``serve``, ``classify``, ``extract``, ``eval``, ``status``,
``make-test-model``; every user error one line with exit status 2) and ``status``'s one-line
report of a running server (``status``). It may import any folder below it (``serving.process``,
``serving.batch``, ``serving.core``); nothing imports it but the ``seqgpt-serve`` script.
"""

__all__: list[str] = []  # the modules are the surface: import from them
