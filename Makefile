# vidflow: `make demo` runs the platform end to end, `make test` runs every check.
# Both do their own set-up (scripts/setup.sh), idempotently.
SHELL := /bin/bash
VENV  := .local/venv
PY    := $(VENV)/bin/python
STACK := $(PY) -m vidflow.stack
UV    := $(shell command -v uv 2>/dev/null || echo $$HOME/.local/bin/uv)

.PHONY: help setup up down status demo urls test lint typecheck unit pytest bench docs lock clean spark-submit

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup:  ## install system packages, the Python environment and the Spark jars (idempotent)
	@scripts/setup.sh

up: setup  ## start the local stack (PostgreSQL, S3/SQS, MLflow, Airflow) and wait until healthy
	@$(STACK) up

down:  ## stop the local stack; no process is left behind
	@if [ -x $(PY) ]; then $(STACK) down; fi

status:  ## show each service and whether it answers
	@$(STACK) status

urls:  ## print the UI URLs and logins
	@$(STACK) urls

demo: setup  ## the whole platform: stack, clips, traffic, analytics, recs; prints the web app and a summary
	@$(STACK) demo

lint: setup  ## dependency check, ruff check, ruff format --check, mypy, the import layers
	$(UV) pip check --python $(PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy include jobs models
	$(VENV)/bin/lint-imports --no-cache

unit: setup  ## unit and DAG-integrity tests only (no stack needed)
	$(VENV)/bin/pytest -m "not integration" -q

# The stack `make test` starts runs the time-scheduled DAGs only when a test triggers them,
# and its Spark drivers with JVM options for small jobs (docs/configuration.md).
test: export VIDFLOW_DAG_SCHEDULES := false
test: export VIDFLOW_SPARK_DRIVER_JAVA_OPTIONS := -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
test: up lint  ## everything: lint, unit, DAG integrity and integration tests on the real stack
	$(VENV)/bin/pytest -q -ra --durations=30

bench: up  ## run the benchmarks in benchmarks/ (JSON + summary in benchmarks/results/)
	@$(PY) -m benchmarks $(BENCH)

docs: setup  ## build the documentation site (MkDocs, strict) into .local/site
	$(VENV)/bin/mkdocs build --strict

lock:  ## re-resolve requirements.in into the pinned requirements.txt
	$(UV) pip compile -q requirements.in --python-version 3.11 -o requirements.txt

spark-submit:  ## run the smoke Spark job through spark-submit (JOB=jobs/x.py ARGS=...)
	@$(PY) -m vidflow.spark $(or $(JOB),jobs/platform_smoke.py) $(ARGS)

clean: down  ## remove all local state (.local/): databases, logs, lake
	rm -rf .local
