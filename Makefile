# The README names two commands: `make run` and `make test`. Both go through `make setup`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 7071
# WORKERS=N runs N host worker processes (default: FUNCTIONS_WORKER_PROCESS_COUNT, else 1).
WORKERS ?=

.PHONY: setup browser run test unit integration lint bench replay-bench clean chaos fan-out soak screenshots

setup: $(VENV)/.setup-stamp node_modules/.setup-stamp

$(VENV)/.setup-stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.setup-stamp: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# The dashboard's browser tests drive Debian's Chromium (test tools' own browser downloads do
# not work on these machines): installed once, as root or through sudo.
CHROMIUM ?= /usr/bin/chromium
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
browser:
	@test -x $(CHROMIUM) || $(APT_GET) install -y -qq chromium >/dev/null \
		|| { $(APT_GET) update -qq && $(APT_GET) install -y -qq chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "could not install Chromium at $(CHROMIUM)"; exit 1; }

run: setup
	$(PY) -m orchestration host --app-dir . --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

test: setup browser
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup browser
	$(PY) -m pytest -q tests/integration

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/run.py
	$(PY) bench/telemetry_bench.py --json bench/results/telemetry.json

replay-bench: setup
	$(PY) bench/replay_bench.py

# The torture run (README "Reliability"): 3 hosts, 500 orchestrations, SIGKILLs, an Azurite
# restart; figures printed and written to chaos-report.json. CHAOS_ARGS="--instances 100 ...".
chaos: setup
	$(PY) -m tests.chaos --json chaos-report.json $(CHAOS_ARGS)

# The soak run (README "Reliability"): 20 minutes of steady mixed load on 2 hosts, throughput
# and memory over time, memory judged after warm-up; soak-report.json. SOAK_ARGS="--minutes 5".
soak: setup
	$(PY) -m tests.soak --json soak-report.json $(SOAK_ARGS)

# A fan-out of 100,000 activities through the work-item queue on the host's defaults
# (make test runs it at 20,000); ~3-4 minutes here.
fan-out: setup
	ORCHESTRATION_WIDE_FAN_OUT=100000 $(PY) -m pytest -q -s tests/integration/test_wide_fan_out.py

# The README's dashboard pictures, from a run of the bundled workflows (docs/dashboard-*.png).
screenshots: setup browser
	$(PY) scripts/dashboard_screenshots.py

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache .mypy_cache .ruff_cache
