# The single entry point: install, run, test, lint.
# `make run` and `make test` work on a fresh machine with Python 3.11.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export DJANGO_SETTINGS_MODULE := opencx.settings

.PHONY: install run worker beat test lint format migrations-check bench-tools bench-import bench-invoke bench-ssrf clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## Run the product on the embedded default: SQLite, tasks in-process, demo data.
run: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --no-input -v 0
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  OpenCX Actions is starting at http://127.0.0.1:$(PORT)/"
	@echo "  Sign in with the demo admin printed above."
	@echo ""
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## A Celery worker, for deployments with CELERY_BROKER_URL set.
worker: install
	$(BIN)/celery -A opencx worker --loglevel=INFO

## Celery beat: sends the import sweeper every minute. Run exactly one per deployment.
beat: install
	$(BIN)/celery -A opencx beat --loglevel=INFO

## The whole test suite (SQLite unless DATABASE_URL is set; CI sets PostgreSQL and Redis).
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) migrations-check

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: install
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

## Benchmarks (need PostgreSQL, Redis and wrk on this machine); they print figures.
bench-tools: install
	$(BIN)/python bench/tool_list.py

## OpenAPI import: GitHub's spec vs FastMCP, 20,000 operations, re-import, the corpus
## (PostgreSQL only; FastMCP goes into a throwaway virtualenv in /tmp, not the project).
bench-import: install
	$(BIN)/python bench/import_spec.py

## Invoke overhead: p50/p99 through our API (gunicorn, PostgreSQL, Redis) vs calling the
## same loopback HTTPS upstream directly, in the same run; goal <= 5 ms added at p50.
bench-invoke: install
	$(BIN)/python bench/invoke.py

## SSRF guard: every URL spelling and reserved range refused, 0 connections opened
## (listening sockets and a connect() counter as witnesses); exits 1 otherwise.
bench-ssrf: install
	$(BIN)/python bench/ssrf.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
