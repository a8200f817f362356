"""The side-by-side benchmark that writes ``BENCHMARKS.md`` and its plots.

    python -m loadtest.benchmark                   # 560M-shaped model (make benchmark)
    python -m loadtest.benchmark --size tiny --quick --report /tmp/b/BENCHMARKS.md --plots /tmp/b

- ``main.py``: the program (arguments, the order of the measurements, the results JSON).
- ``plan.py``: how much it measures (``FULL``, ``QUICK``).
- ``workloads.py``: request bodies from the corpus, with unique tags and the service's budgets.
- ``driver.py``: a closed-loop HTTP load driver; ``measure*.py``: one function per report item.
- ``hf_baseline.py``: the Hugging Face ``transformers`` baselines, run in a child process.
- ``report.py``: writes the report and its plots (``plots.py``) from the results; re-renders.
- ``report_text.py``: what the report concludes (ratios, goals met), rendered through
  ``BENCHMARKS.md.jinja``, which holds every word (pure: results in, text out).

It shares the corpus, the response checks and the server process with the locust suite
(``loadtest/corpus.py``, ``checks.py``, ``server.py``).
"""

__all__: list[str] = []
