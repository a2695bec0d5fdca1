# OrderFlow — `make run` starts everything, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

# Tests use the local PostgreSQL and Redis unless told otherwise (CI sets both).
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/orderflow)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/9)

.PHONY: run test test-rabbitmq lint format venv bench migrate seed clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# One plain command, so make runs it without a shell and run_stack.py is make's own child: make
# passes SIGTERM to it; a SIGINT to make alone (which make does not pass on) run_stack notices by
# watching make (scripts/run_stack.py, Supervisor). Either way every process stops.
run: $(STAMP)
	@$(PY) scripts/run_stack.py

test: $(STAMP)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# The integration and reliability suites again with RabbitMQ as the broker: the session makes its
# own vhost on the local RabbitMQ (orderflow/settings_test.py), the reliability suite its own node.
test-rabbitmq: $(STAMP)
	TEST_BROKER=rabbitmq DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(PY) -m pytest tests/integration tests/reliability tests/cluster $(PYTEST_ARGS)

# Style (ruff), then the import contracts of pyproject.toml (import-linter: layers, listeners, models, cycles).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: $(STAMP)
	$(PY) manage.py db_init

seed: $(STAMP)
	$(PY) manage.py seed

bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf var staticfiles
