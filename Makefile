# The two commands of the quick start: `make run` and `make test`.
# Both set up the virtualenv from the pinned requirements on first use and reuse it after.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VAR := var
export DJANGO_SETTINGS_MODULE := julesweb.settings
# Generated once by `make run` when the environment does not name its own.
export SECRET_KEY_FILE ?= $(VAR)/secret_key
export FIELD_ENCRYPTION_KEY_FILE ?= $(VAR)/field_encryption_key

.PHONY: run test setup setup-dev lint types unit integration clean bench load soak help

help:
	@echo "make run   - set up and run the portal with its workers and the Jules simulator"
	@echo "make test  - set up and run lint, types and the whole test suite"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.X)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-run

$(VAR)/secret_key: | $(BIN)/python
	@mkdir -p $(VAR)
	@umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

$(VAR)/field_encryption_key: $(VENV)/.installed-run
	@mkdir -p $(VAR)
	@test -s $@ || (umask 077 && $(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > $@)

setup: $(VENV)/.installed-run $(VAR)/secret_key $(VAR)/field_encryption_key

setup-dev: $(VENV)/.installed-dev $(VAR)/secret_key $(VAR)/field_encryption_key

run: setup
	$(BIN)/python manage.py run_portal

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup-dev
	$(BIN)/mypy .

# Unit and contract tests run on SQLite with eager Celery, whatever the environment names.
unit: setup-dev
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest -q -n 2 tests/unit tests/contract

# Integration tests use DATABASE_URL and REDIS_URL (skipped, or failed with
# REQUIRE_SERVICES=1, when they are missing); browser tests use Chromium likewise.
integration: setup-dev
	$(BIN)/pytest -q tests/integration tests/browser

test: lint types unit integration

bench: setup-dev
	$(BIN)/python -m bench.sync_floor

# The 50-user load test of docs/performance.md (PostgreSQL and Redis on loopback).
load: setup-dev
	$(BIN)/python -m bench.load

# The soak test of docs/reliability.md: `make run`'s setup under steady use, 30 minutes
# by default (SOAK_MINUTES=N for another length). Not part of `make test`.
soak: setup-dev
	$(BIN)/python -m bench.soak --minutes $(or $(SOAK_MINUTES),30)

# Notification latency and webhook throughput on real workers (docs/performance.md).
.PHONY: notify-bench
notify-bench: setup-dev
	$(BIN)/python -m bench.notifications

# The receiver outage drill of docs/reliability.md: ten minutes down, in real time.
.PHONY: notify-outage
notify-outage: setup-dev
	$(BIN)/python -m bench.notify_outage

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache .pytest_cache
