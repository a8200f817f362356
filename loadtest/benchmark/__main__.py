"""``python -m loadtest.benchmark``: run the benchmark (see ``loadtest/benchmark/main.py``)."""

import sys

from loadtest.benchmark.main import main

sys.exit(main())
