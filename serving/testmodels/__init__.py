"""Test checkpoints: what ``seqgpt-serve make-test-model`` writes, for tests and benchmarks only.

Owns the random-weight BLOOM checkpoints shaped as SeqGPT-560M or 7B1 and their tokenizers
(``random_model``: ``make_test_model``, ``SIZES``) and the taught tiny checkpoint that answers
given extractions exactly (``teaching``: ``teach_model``). The server never loads this code: it
serves whatever checkpoint it is given. It may import ``prompts`` (a lesson's prompt is the
product's own) and, lazily, torch and transformers; never another folder of ``serving``.
"""

__all__: list[str] = []  # the modules are the surface: import from them
