# Starship Orders: the two commands are `make run` and `make test`.
SHELL := /bin/bash
# uv on PATH, else where `pip install --user` puts it, else as a module of python3
# (a plain `pip install uv` under pyenv leaves it off PATH until a rehash).
UV ?= $(shell command -v uv 2>/dev/null || { test -x "$(HOME)/.local/bin/uv" && echo "$(HOME)/.local/bin/uv"; } || echo "python3 -m uv")
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest arguments, e.g. `make test ARGS="-k wallet -x"`
ARGS ?=

.PHONY: run test setup uv migrate demo lint format typecheck check bench-data bench bench-data-5m bench-5m bench-table soak clean

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(HOME)/.local/bin/uv" || python3 -m uv --version >/dev/null 2>&1 || \
		{ echo "Installing uv (pip install --user uv)"; python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv; }

setup: uv
	@$(UV) sync --frozen

migrate: setup
	@$(PY) manage.py migrate --no-input

demo: migrate
	@$(PY) manage.py seed_demo

## run: the product on http://$(HOST):$(PORT) with demo data, web server and worker together.
run: demo
	@DJANGO_DEBUG=$${DJANGO_DEBUG:-1} bash scripts/run.sh $(HOST) $(PORT)

## test: the whole suite (PostgreSQL when DATABASE_URL is set, SQLite otherwise).
test: setup
	@$(PY) -m pytest $(ARGS)

lint: setup
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .

format: setup
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

typecheck: setup
	@$(UV) run --frozen mypy starship orders

check: lint typecheck
	@$(PY) manage.py makemigrations --check --dry-run

## bench-data: the benchmark data set in PostgreSQL (BENCH_DATABASE_URL), e.g. `make bench-data ORDERS=100000`.
ORDERS ?= 1000000
bench-data: setup
	@$(PY) bench/generate.py --orders $(ORDERS)

## bench: every benchmark against that data set; prints the table, writes bench/results/latest.json.
bench: setup
	@$(PY) bench/run.py $(BENCH_ARGS)

## bench-data-5m / bench-5m: the 5,000,000-order data set in its own database, and the
## dashboard group against it (bench/results/latest-5M.json); bench-table: the README table.
BENCH_5M_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_5m
bench-data-5m: setup
	@BENCH_DATABASE_URL=$(BENCH_5M_DATABASE_URL) $(PY) bench/generate.py --orders 5000000

bench-5m: setup
	@BENCH_DATABASE_URL=$(BENCH_5M_DATABASE_URL) $(PY) bench/run.py --only dashboard --orders-label 5M $(BENCH_ARGS)

bench-table: setup
	@$(PY) bench/table.py

## soak: two hosts and two RQ workers under load while a worker, the database's
## connections and Redis fail; checks nothing was lost or doubled (bench/soak.py).
SOAK_ARGS ?=
soak: setup
	@$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf .venv db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles audit-checkpoints.jsonl
