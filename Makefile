# Quick start: `make run` serves the API on :8000; `make test` runs every test against real
# processes. Both install what is missing first (Python packages, redis, the Dapr runtime,
# Mailpit, PostgreSQL, HAProxy).
#   make run                      one app, SQLite stores, every process under supervisord
#   make run PROFILE=postgresql   the same with every store on PostgreSQL
#   make run REPLICAS=3           3 replicas on PostgreSQL behind HAProxy, HA control plane
#   make bench REPLICAS=1,2,3     the throughput / CPU curve over replica counts
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: run test stop install unit eval bench

install:
	bash scripts/ensure_python.sh
	bash scripts/ensure_redis.sh
	bash scripts/ensure_browser.sh
	bash scripts/install_dapr.sh
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_haproxy.sh
	bash scripts/install_k8s_tools.sh >/dev/null
	bash scripts/install_mailpit.sh

REPLICAS ?= 1
PROFILE ?=
run:
	REPLICAS=$(REPLICAS) PROFILE=$(PROFILE) bash scripts/run.sh

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
	-$(PY) scripts/cluster.py down
	-$(PY) scripts/devstack.py down

# Benchmarks, crash injection and fuzzing against real processes (docs/benchmarks.md). Each
# starts its own redis, placement, scheduler, daprd and app on ports 31000-31900 and stops them.
# Flags go in ARGS, e.g. make bench ARGS="--n 400 --c 40", make chaos ARGS="--seed 11".
.PHONY: chaos fuzz
# make bench REPLICAS=1,2,3: the replica curve (benchmarks/replicas.py) instead of the
# single-process benchmark.
bench: install
	@if [[ "$(origin REPLICAS)" == "command line" ]]; then \
	  $(PY) -m benchmarks.replicas --replicas $(REPLICAS) $(ARGS); \
	else $(PY) -m benchmarks.bench $(ARGS); fi

chaos: install
	$(PY) -m benchmarks.chaos $(ARGS)

fuzz: install
	$(PY) -m benchmarks.fuzz $(ARGS)
