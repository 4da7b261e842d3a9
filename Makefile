# DevHive Realtime. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
TOOLS := $(VENV)/.installed
PG_BIN ?= /usr/lib/postgresql/15/bin
DEV_MEMBERSHIP ?= none
FUNCTIONS := connect disconnect subscribe status broadcaster sweeper relay
# make build fails when a bootstrap is over this (6.3 MB: cold starts; docs/design.md "Limits";
# raised from 6 MB when presence put the Management API client into connect, disconnect and
# subscribe). tests/docs_check.py fails when docs/design.md or crates/bench/src/targets.rs differ.
MAX_BOOTSTRAP_BYTES := 6300000
# Deploy environment: a samconfig.toml environment (dev, prod) with its own stack, region and tags.
ENV ?= dev
STACK ?= devhive-realtime-$(ENV)
REGION ?= $(shell awk -v s='[$(ENV).global.parameters]' '$$0 == s { f = 1; next } /^\[/ { f = 0 } f && $$1 == "region" { gsub(/"/, "", $$3); print $$3 }' samconfig.toml)
INVOKE_PORT ?= 9000
export SAM_CLI_TELEMETRY := 0

.PHONY: help dev test chaos lint build sam-build validate deploy deploy-guided logs watch invoke sam-local sam-local-up sam-local-down bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(TOOLS): tests/requirements.txt
	@command -v python3 >/dev/null || { echo "make: python3 is needed for the tool venv" >&2; exit 2; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

dev: ## Run the local WebSocket API and dev console on 127.0.0.1:8080, with a throwaway Postgres and the relay when Postgres 15 is installed, DynamoDB Local with --store dynamodb (DEV_ARGS="…" for flags)
	$(CARGO) build --locked -p devserver
	@DEV_MEMBERSHIP=$(DEV_MEMBERSHIP) tests/dev.sh $(DEV_ARGS)

test: $(TOOLS) ## Every test: workspace tests on DynamoDB Local and Postgres 15, make invoke under cargo lambda watch, the web client (unit and in Chromium), sam validate --lint
	$(CARGO) build --workspace --locked
	@mkdir -p target
	set -o pipefail; tests/with-services.sh sh -c '$(CARGO) test --workspace --locked && tests/invoke.sh' 2>&1 | tee target/test.log
	set -o pipefail; { tests/client-deps.sh && tests/web.sh && tests/browser.sh && CHAOS_SEEDS=1-2 CHAOS_WRITES=150 CHAOS_REMOVALS=0 tests/chaos/run.sh && tests/quickstart.sh && tests/checkov.sh && $(VENV)/bin/python tests/template_check.py && python3 tests/docs_check.py && python3 tests/text_check.py && python3 tests/fn_length.py && tests/docs_examples.sh; } 2>&1 | tee -a target/test.log
	$(MAKE) --no-print-directory validate
	@awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } /^[a-z-]+: [0-9]+ passed, [0-9]+ failed$$/ { p += $$2; f += $$4 } END { printf "%d passed, %d failed, %d ignored\n", p, f, i; exit (f + i > 0) }' target/test.log

CHAOS_SEEDS ?= 1-20
CHAOS_WRITES ?= 1000
chaos: ## The convergence checker: seeded schedules of writes under AWS's documented faults, every clients/web client compared with Postgres (CHAOS_SEEDS=1-20, CHAOS_WRITES=1000; more variables in tests/chaos/check.mjs); make test runs 2 short ones
	$(CARGO) build --locked -p devserver
	CHAOS_SEEDS=$(CHAOS_SEEDS) CHAOS_WRITES=$(CHAOS_WRITES) CHAOS_DURATION_MS=$${CHAOS_DURATION_MS:-$$(( $(CHAOS_WRITES) * 25 ))} tests/chaos/run.sh

lint: ## cargo fmt --check and clippy -D warnings on every target (CI runs it)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

build: $(TOOLS) ## Build the Lambda artifacts for arm64 with cargo-lambda (release) and print their sizes
	@rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --locked $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do stat -c %s target/lambda/$$f/bootstrap | awk -v f=$$f '{ printf "  %-12s target/lambda/%s/bootstrap  %.2f MB (%d bytes)\n", f, f, $$1 / 1000000, $$1 }'; done
	@for f in $(FUNCTIONS); do [ $$(stat -c %s target/lambda/$$f/bootstrap) -le $(MAX_BOOTSTRAP_BYTES) ] || { echo "target/lambda/$$f/bootstrap is over $(MAX_BOOTSTRAP_BYTES) bytes (docs/design.md \"Limits\")" >&2; exit 1; }; done

sam-build: $(TOOLS) ## sam build (cargo-lambda, arm64) into .aws-sam/ with samconfig.toml's ENV settings (cached: only sources are hashed, see .sam-src/)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --config-env $(ENV)

validate: $(TOOLS) ## sam validate --lint and cfn-lint on template.yaml (offline)
	AWS_REGION=$${AWS_REGION:-us-east-1} $(VENV)/bin/sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml

.PHONY: deploy-rehearsal
deploy-rehearsal: $(TOOLS) ## Deploy make build's artifacts as sam deploy would, dev then prod beside it, into LocalStack in-process (offline, own venv .venv-rehearsal); check what was created, delete both, prod's data retained
	tests/deploy-rehearsal/run.sh

deploy: sam-build ## sam deploy of stack devhive-realtime-$(ENV) with samconfig.toml's ENV settings (ENV=dev|prod); needs AWS credentials
	$(VENV)/bin/sam deploy --config-env $(ENV)

deploy-guided: sam-build ## sam deploy --guided for ENV: asks for every parameter, saves the answers in samconfig.toml's ENV section
	$(VENV)/bin/sam deploy --guided --config-env $(ENV)

logs: ## Tail a function's logs: make logs FN=broadcaster [ENV=dev|prod] (needs AWS credentials)
	@[ -n "$(FN)" ] || { echo "usage: make logs FN=connect|disconnect|subscribe|status|broadcaster|sweeper|relay [ENV=dev|prod]" >&2; exit 2; }
	@if command -v aws >/dev/null; then \
	  aws logs tail /aws/lambda/$(STACK)-$(FN) --follow --format short $(if $(REGION),--region $(REGION)); \
	else \
	  echo "make logs: the AWS CLI (aws) is not installed; using sam logs instead" >&2; \
	  $(VENV)/bin/sam logs --config-env $(ENV) --stack-name $(STACK) --name $$(echo $(FN) | sed 's/^./\U&/')Function --tail; \
	fi

watch: $(TOOLS) ## Serve the functions locally with cargo lambda watch on DynamoDB Local (then: make invoke …); the broadcaster posts to WEBSOCKET_ENDPOINT (default: make dev's Management API)
	SERVICES=dynamodb tests/with-services.sh sh -c '\
	  export CONNECTIONS_TABLE=devhive-connections JWT_SECRET=$${JWT_SECRET:-devhive-realtime-development-secret-do-not-deploy} MEMBERSHIP=$${MEMBERSHIP:-none}; \
	  export WEBSOCKET_ENDPOINT=$${WEBSOCKET_ENDPOINT:-http://127.0.0.1:8080/dev}; \
	  $(CARGO) run -q -p devserver -- table && \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(CARGO) lambda watch --invoke-address 127.0.0.1 --invoke-port $(INVOKE_PORT)'

invoke: $(TOOLS) ## Invoke a function served by make watch: make invoke FN=subscribe EVENT=tests/events/subscribe.json
	@[ -n "$(FN)" ] && [ -n "$(EVENT)" ] || { echo "usage: make invoke FN=<function> EVENT=tests/events/<fixture>.json (with make watch running)" >&2; exit 2; }
	@mkdir -p target
	@python3 tests/refresh-event.py $(EVENT) > target/invoke-$(FN).json
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda invoke $(FN) --invoke-address 127.0.0.1 --invoke-port $(INVOKE_PORT) --data-file target/invoke-$(FN).json

sam-local: $(TOOLS) ## Run make build's seven arm64 bootstraps in Lambda containers (sam local invoke, start-lambda) against DynamoDB Local, Postgres and a dev server (target/debug, as make test builds it); its own dockerd under target/sam-local/ (root, overlayfs)
	tests/sam-local/run.sh

sam-local-up: $(TOOLS) ## For the README's sam local commands: eval "$(make -s sam-local-up)" starts make sam-local's dockerd and images, DynamoDB Local on 8000, a dev server on 8080
	@$(CARGO) build --workspace --locked --quiet >&2
	@tests/sam-local/up.sh up

sam-local-down: ## Stop what make sam-local-up started
	@tests/sam-local/up.sh down

SCENARIO ?= all

bench: ## Benchmarks (crates/bench): prints the tables BENCHMARKS.md is written from and writes target/bench/results.json: every scenario (fanout delivery latency capacity throughput artifacts recovery drain sweep presence; SCENARIO=<one> for one); BENCH_LONG=1 adds the long runs; BENCH_QUICK=1 a smoke run; BASELINE_BROADCASTER=<a release broadcaster> adds compare
	$(if $(filter all artifacts,$(SCENARIO)),$(MAKE) build)
	$(CARGO) build --release --locked -p bench -p devserver $(addprefix -p ,$(FUNCTIONS))
	ulimit -Hn 262144 2>/dev/null || true; ulimit -n $$(ulimit -Hn); \
	  tests/with-services.sh target/release/devhive-bench --scenario $(SCENARIO) $(if $(BASELINE_BROADCASTER),--baseline-broadcaster $(BASELINE_BROADCASTER))

clean: ## Remove build output, the tool venv and installed test services
	$(CARGO) clean
	rm -rf tests/node_modules $(VENV) .venv-checkov .venv-rehearsal .aws-sam
