# DevHive Realtime. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help test build-debug dev clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

test: ## Run every test against DynamoDB Local and a throwaway Postgres 15 (installs what it needs)
	$(CARGO) build --workspace --locked
	set -o pipefail; tests/with-services.sh $(CARGO) test --workspace --locked 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log

PG_BIN ?= /usr/lib/postgresql/15/bin
DEV_MEMBERSHIP ?= none

dev: ## Run the local WebSocket API on 127.0.0.1:8080, with a throwaway Postgres and the relay when Postgres 15 is installed (DEV_ARGS="…" for flags)
	$(CARGO) build --locked -p devserver
	@if [ -x "$(PG_BIN)/initdb" ] && [ -z "$$DATABASE_URL" ]; then \
	  SERVICES=postgres tests/with-services.sh sh -c 'target/debug/devhive-realtime migrate && MEMBERSHIP=$(DEV_MEMBERSHIP) exec target/debug/devhive-realtime dev $(DEV_ARGS)'; \
	else \
	  target/debug/devhive-realtime dev $(DEV_ARGS); \
	fi

clean: ## Remove build output and installed test tools
	$(CARGO) clean
	rm -rf tests/node_modules .venv
