# 供电业务受理助手 — the two commands a newcomer needs are `make run` and `make test`.
# Everything else (venv, dependencies, generated domain, training) happens on demand and
# only when its inputs changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ifneq (,$(wildcard .env))
include .env
export
endif

VENV      := .venv
PY        := $(VENV)/bin/python
RASA      := $(VENV)/bin/rasa
STAMP     := $(VENV)/.installed
TOOLS     := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
MODEL     := models/intake.tar.gz
export RASA_TELEMETRY_ENABLED := false
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

GENERATED    := domain/catalog.yml data/catalog_rules.yml data/nlu/catalog_lookups.yml actions/form_validators.py
TRAIN_INPUTS := config.yml $(wildcard domain/*.yml) $(wildcard data/*.yml) $(wildcard data/nlu/*.yml) \
                $(wildcard data/jieba/*) bot/plugins/nlu.py bot/plugins/logistic.py bot/plugins/encoder.py bot/core/normalize.py \
                bot/core/entities.py bot/catalog.yml
# The list of those files: a training file removed (or added) retrains as one changed does.
TRAIN_LIST   := models/.train-inputs
$(shell mkdir -p models; echo '$(sort $(TRAIN_INPUTS))' | cmp -s - $(TRAIN_LIST) || echo '$(sort $(TRAIN_INPUTS))' > $(TRAIN_LIST))
TIMED        := scripts/timed.sh

.PHONY: help run run-prod test test-unit test-e2e train evaluate bench profile shell validate lint lock lock-tools clean generated browser nginx tools

help:
	@echo "make run       install what is missing, train if needed, start the assistant"
	@echo "make test      the same set-up, then the whole test suite"
	@echo "make train     train the model when data/config/domain changed"
	@echo "make evaluate  holdout accuracy, macro-F1, per-intent F1, entity P/R (reports/)"
	@echo "make bench     latency vs the stock rasa init bot; load on 1 and 2 servers (production profile)"
	@echo "make profile   py-spy on the Rasa and action servers under 20 customers (bench/profile.py)"
	@echo "make run-prod  the production profile: 2 Rasa + 2 action servers, nginx, PostgreSQL, Redis, RabbitMQ"
	@echo "make lint      ruff, mypy on the core, and the layering contract (import-linter)"
	@echo "make shell     chat in the terminal (needs 'make run' in another terminal)"

# ---------------------------------------------------------------- set-up
$(STAMP): requirements.txt scripts/find-python310.sh
	@PYTHON310=$$(scripts/find-python310.sh) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
		echo "Creating $(VENV) with $$PYTHON310"; rm -rf $(VENV); "$$PYTHON310" -m venv $(VENV); \
	fi
	@$(TIMED) "Upgrading pip in $(VENV)" $(PY) -m pip install --progress-bar on --upgrade pip
	@$(TIMED) "Installing the locked dependencies (requirements.txt, ≈ 2–3 min the first time)" \
		$(PY) -m pip install --progress-bar on -r requirements.txt
	@touch $(STAMP)

# schemathesis and moto need pydantic 2 / a newer jsonschema than Rasa allows: their own venv.
$(TOOLS_STAMP): requirements-tools.txt scripts/find-python310.sh
	@PYTHON310=$$(scripts/find-python310.sh) || exit 1; \
	if [ ! -x $(TOOLS)/bin/python ]; then "$$PYTHON310" -m venv $(TOOLS); fi
	@$(TIMED) "Installing the test tools (schemathesis, moto) in $(TOOLS)" \
		$(TOOLS)/bin/pip install --progress-bar on -r requirements-tools.txt
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

$(GENERATED) &: bot/catalog.yml bot/core/catalog.py bot/tools/generate.py | $(STAMP)
	@$(TIMED) "Generating the domain, rules and validators from bot/catalog.yml" $(PY) -m bot catalog generate
	@touch $(GENERATED)

generated: $(GENERATED)

$(MODEL): $(STAMP) $(GENERATED) $(TRAIN_INPUTS) $(TRAIN_LIST)
	@mkdir -p models
	@$(TIMED) "Training the model (≈ 4 min on 2 cores; only when data, config or domain changed)" \
		$(RASA) train --domain domain --data data --config config.yml --out models --fixed-model-name intake
	@touch $(MODEL)

train: $(MODEL)

# Debian's nginx for the reverse-proxy tests (run unprivileged on a free port; no service).
nginx:
	@test -x /usr/sbin/nginx || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }

# Debian's Chromium (and a CJK font) for the browser tests; Playwright drives it.
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

# ---------------------------------------------------------------- the two commands
run: $(MODEL)
	$(PY) -m bot run --model $(MODEL)

# Two Rasa servers and two action servers behind nginx, PostgreSQL, Redis and RabbitMQ
# (all on this machine by default; README "Production profile").
run-prod: $(MODEL) nginx
	$(PY) -m bot run --profile prod --model $(MODEL)

test: $(MODEL) browser nginx tools lint
	$(PY) -m bot catalog check
	$(RASA) data validate --domain domain --data data --config config.yml --quiet
	$(PY) -m bot trainer lint
	$(PY) -m pytest tests

# Habits every change keeps: lint + format (ruff), types of the core (mypy), layering.
lint: $(STAMP) $(GENERATED)
	$(VENV)/bin/ruff check bot actions bench tests scripts
	$(VENV)/bin/ruff format --check bot actions bench tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-unit: $(STAMP) $(GENERATED)
	$(PY) -m pytest tests/unit

test-e2e: $(MODEL)
	$(PY) -m pytest tests/e2e

# ---------------------------------------------------------------- measurements
evaluate: $(MODEL)
	$(PY) -m bot.tools.evaluation --model $(MODEL)
	$(PY) -m bot.tools.evaluation --model $(MODEL) --data tests/nlu/entity_check.yml \
		--no-rejections --no-rasa-report --out reports/entity_check_metrics.json
	$(PY) -m bot.tools.evaluation --model $(MODEL) --data tests/nlu/entity_dev.yml \
		--no-rejections --no-rasa-report --out reports/entity_dev_metrics.json
	$(PY) -m bot.tools.evaluation --model $(MODEL) --data tests/nlu/entity_dev2.yml \
		--no-rejections --no-rasa-report --out reports/entity_dev2_metrics.json
	$(PY) -m bench.scenarios --model $(MODEL)

profile: $(MODEL)
	$(PY) -m bench.profile --model $(MODEL)

bench: $(MODEL) nginx
	$(PY) -m bench.latency --model $(MODEL)
	$(PY) -m bench.load --model $(MODEL)
	$(PY) -m bench.soak --model $(MODEL)
	$(PY) -m bench.handover_latency --model $(MODEL)
	$(PY) -m bench.profile --model $(MODEL)

shell: $(STAMP)
	$(PY) scripts/chat.py

validate: $(MODEL)
	$(RASA) data validate --domain domain --data data --config config.yml
	$(PY) -m bot trainer lint

# Re-resolve the lock from requirements.in (review the diff before committing).
lock: $(STAMP)
	$(PY) -m pip install --quiet -r requirements.in
	@{ echo "# Full lock of requirements.in for Python 3.10 (generated by \`make lock\`; do not edit by hand)."; \
	   $(PY) -m pip freeze | grep -v '^-e'; } > requirements.txt

clean:
	rm -rf models reports .rasa var/tracker.db
