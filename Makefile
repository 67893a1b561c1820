# Two commands: `make run` and `make test`. Both bootstrap .venv from requirements.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv db

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m saas_admin.dev run

test: $(STAMP) lint
	$(PY) -m saas_admin.dev test $(PYTEST_ARGS)

# ruff (lint + format check) and mypy with django-stubs; `make test` runs this first, and so does CI.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=saas_admin.settings.test $(VENV)/bin/mypy .

db: $(STAMP)
	$(PY) -m saas_admin.dev db
