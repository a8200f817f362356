"""Processes: how the server is started, supervised and stopped, and what it is started with.

Owns the launcher (``launcher``: environment, keys, settings check), who the server runs as
(``privileges``: never root when given a user), the server process's code
(``server``: vLLM's parser and serve command with SeqGPT's defaults; the program is
``serving.entry``), the drain relayed to each of several API servers (``apiservers``), the
supervisor that stays the server's parent (``supervisor``), the vLLM general plugin that ends
engine processes with their parent (``lifeline``), the model check (``modelcheck``), the check of
parallel workers on vLLM's CPU backend (``cpuparallel``); the test checkpoints live in
``serving.testmodels``. It may import ``serving.core`` (the settings);
never a front end, the contract or the plugin: it starts the server, whose code it does not touch.
"""

__all__: list[str] = []  # the modules are the surface: import from them
