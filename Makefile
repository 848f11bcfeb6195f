# Quick start: `make run` serves the API on :8000; `make test` runs every test against real
# processes. Both install what is missing first (Python packages, redis, the Dapr runtime).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test stop install unit eval bench

install:
	bash scripts/ensure_python.sh
	bash scripts/ensure_redis.sh
	bash scripts/install_dapr.sh

run:
	bash scripts/run.sh

test: install
	$(PY) -m pytest tests -ra

unit:
	bash scripts/ensure_python.sh
	$(PY) -m pytest tests/unit -q

eval:
	bash scripts/ensure_python.sh
	$(PY) -m app.eval ../shared/eval/dev-tickets.jsonl

stop:
	-PATH="$$HOME/.dapr/bin:$$PATH" dapr stop -f . 2>/dev/null
	-$(PY) scripts/devstack.py down

# Benchmarks, crash injection and fuzzing against real processes (docs/benchmarks.md). Each
# starts its own redis, placement, scheduler, daprd and app on ports 31000-31900 and stops them.
# Flags go in ARGS, e.g. make bench ARGS="--n 400 --c 40", make chaos ARGS="--seed 11".
.PHONY: chaos fuzz
bench: install
	$(PY) -m benchmarks.bench $(ARGS)

chaos: install
	$(PY) -m benchmarks.chaos $(ARGS)

fuzz: install
	$(PY) -m benchmarks.fuzz $(ARGS)
