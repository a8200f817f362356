"""seqgpt-serve: SeqGPT-560M's zero-shot classification and extraction served on vLLM.

One folder per program or layer; imports point down this list, never up or sideways
(``tests/unit/test_architecture.py``; ARCHITECTURE.md has the map):

- ``cli``, ``plugin`` (the composition root vLLM loads), ``entry`` (the server's program);
- ``http``, ``ui``, ``batch``: the front ends;
- ``contract`` (bodies every front end shares), ``process`` (starting and stopping processes);
- ``core``: the task core; below it, the pure ``prompts`` and ``parsers`` packages.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
