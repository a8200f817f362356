"""Load tests and benchmarks for seqgpt-serve.

- ``locustfile.py`` (+ ``locust.conf``, ``shapes.py``): a locust suite for any deployment, with
  checked responses and SLO gates; ``run.py`` runs it headless, starting a test server if asked.
- ``benchmark.py``: the side-by-side benchmark that writes ``BENCHMARKS.md`` and its plots.
- ``corpus.jsonl``: hand-written Chinese and English texts with realistic label sets.
"""

__all__: list[str] = []
