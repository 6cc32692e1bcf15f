# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test install install-dev migrate seed lint messages bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput -v 0

seed: migrate
	$(PY) manage.py seed_demo

## make run: install, migrate, seed demo data and serve everything on http://127.0.0.1:$(PORT)
run: seed
	DEBUG=$${DEBUG:-true} PORT=$(PORT) $(PY) bin/run_platform.py

## make test: install and run the whole suite (set DATABASE_URL / REDIS_URL for the real servers)
test: install-dev
	$(PY) -m pytest

## make bench: the issue-8 benchmarks on PostgreSQL + Redis (installs them with apt if missing)
bench: install
	@command -v wrk >/dev/null && command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  || (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql redis-server wrk)
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) bench/run.py

lint: install-dev
	$(VENV)/bin/ruff check .

messages: install
	$(PY) manage.py makemessages -l id --ignore=.venv --ignore=bench
	$(PY) manage.py makemessages -d djangojs -l id --ignore=.venv --ignore=bench --ignore=staticfiles --ignore=static/vendor
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var staticfiles
