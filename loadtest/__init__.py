"""Load tests and benchmarks for seqgpt-serve: one program per folder.

- ``locustfile.py`` (+ ``locust.conf``, ``shapes.py``, ``slo.py``): a locust suite for any
  deployment, with checked responses and SLO gates; ``run.py`` runs it headless, starting a test
  server if asked. ``latency.py``: start-up time and one request's latency.
- ``benchmark/``: the side-by-side benchmark that writes ``BENCHMARKS.md`` and its plots.
- ``batch_benchmark/``: the batch commands' benchmark that writes ``BATCH_BENCHMARK.md``.
- Shared by all: ``corpus.jsonl`` (hand-written Chinese and English texts with realistic label
  sets) and ``corpus.py``, ``checks.py`` (every answer checked), ``server.py`` (a server
  process on a free port), ``machine.py`` (machine facts for reports).
"""

__all__: list[str] = []
