"""``python -m loadtest.batch_benchmark``: run the batch benchmark (see ``main.py`` beside it)."""

import sys

from loadtest.batch_benchmark.main import main

sys.exit(main())
