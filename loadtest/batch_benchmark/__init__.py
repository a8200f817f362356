"""The batch benchmark that writes ``BATCH_BENCHMARK.md``: ``seqgpt-serve classify|extract``
with vLLM in the batch's own process against the same rows sent to a server.

    python -m loadtest.batch_benchmark --sizes tiny --rows 64 --repeats 1 --report /tmp/b.md

- ``main.py``: the program (row files, both sides, the results JSON).
- ``report.py``: the Markdown report (pure: results in, text out).
- ``results.json``: the official report's results, for ``--render``.
"""

__all__: list[str] = []
