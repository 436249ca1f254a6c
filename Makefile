# Kefu: `make run` starts the assistant, `make test` runs the whole suite.
# Every step is idempotent: stamps and fingerprints skip work that is already done.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.kefu-stamps
export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DEPS_HASH := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
NPM_HASH := $(shell cat package.json package-lock.json | sha256sum | cut -c1-16)

.PHONY: help setup python-deps assets browser encoder model run test test-fast bench bench-intent bench-sentiment bench-knowledge bench-routing bench-report bench-calibration bench-oos bench-load imports lint clean

help:
	@echo "make run    - set up, train if needed, start Kefu (embedded PostgreSQL) and print the URL"
	@echo "make test   - set up, train if needed, run the whole test suite"
	@echo "make bench  - held-out NLU accuracy (rasa test nlu, 20% split) and REST latency"
	@echo "make bench-intent - intent classification: stock DIET vs frozen encoder (int8/fp32) vs fine-tuned encoder"
	@echo "make bench-calibration - ECE/Brier/NLL before/after calibration, automation share at the precision targets, training cost"
	@echo "make bench-oos - out-of-scope detection, held-out-intent protocol (BANKING77, SMP2019) vs FallbackClassifier on DIET"
	@echo "make bench-knowledge - FAQ retrieval per signal (paraphrase set), calibrated answer decision, search latency, answer-cache hit rate"
	@echo "make bench-sentiment - sentiment: SnowNLP vs TextBlob vs our lexicon/head/ensemble on ChnSentiCorp-htl and waimai_10k"
	@echo "make bench-load - load: closed/open loop over REST and socket.io, Kefu vs stock rasa init (LOAD_ARGS=--help)"
	@echo "make bench-routing - routing accuracy of the trained model on data/routing_eval/turns.yml (confusion by route)"
	@echo "make lint   - import rules (lint-imports, contracts in pyproject.toml) and ruff"

$(PY):
	@PYTHON310=$$(scripts/find-python310) || exit 1; \
	echo "setup: creating $(VENV) with $$PYTHON310"; \
	"$$PYTHON310" -m venv $(VENV)

$(STAMPS)/deps-$(DEPS_HASH): | $(PY)
	@echo "setup: installing pinned Python dependencies (a few minutes on a fresh machine) ..."
	@$(PY) -m pip install -q --upgrade "pip==24.3.1"
	@$(PY) -m pip install -q --progress-bar off -r requirements.txt
	@$(PY) -m pip install -q --no-deps -e .
	@mkdir -p $(STAMPS) && rm -f $(STAMPS)/deps-* && touch $@

python-deps: $(STAMPS)/deps-$(DEPS_HASH)
	@echo "setup: Python dependencies are installed ($(DEPS_HASH))"

node_modules/.kefu-$(NPM_HASH): package.json package-lock.json
	@command -v npm >/dev/null || { echo "setup: npm is required for the web chat assets (apt-get install npm)"; exit 1; }
	@echo "setup: installing web chat assets with npm ci ..."
	@npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.kefu-* && touch $@

assets: node_modules/.kefu-$(NPM_HASH)
	@echo "setup: web chat assets are installed"

setup: python-deps assets

browser:
	@scripts/install-browser

ENCODER_DIR := models/encoder/multilingual-e5-small

encoder: setup
	@$(PY) -m kefu.encoder.convert --out $(ENCODER_DIR)

model: setup encoder
	@$(PY) -m ops train

run: model
	@$(PY) -m ops run

test: model browser imports
	@$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	@$(PY) -m pytest -q -m "not servers" $(PYTEST_ARGS)

bench: model
	@$(PY) bench/nlu_holdout.py
	@$(PY) bench/rest_latency.py

bench-intent: model
	@$(PY) bench/intent.py --datasets-dir ../shared/datasets

bench-calibration: encoder
	@$(PY) bench/intent.py --datasets-dir ../shared/datasets --only-calibration
	@$(PY) bench/calibration_cost.py

bench-oos: encoder
	@$(PY) bench/oos.py --datasets-dir ../shared/datasets

bench-sentiment: encoder
	@$(PY) bench/sentiment.py --datasets-dir ../shared/datasets

bench-routing: model
	@$(PY) bench/routing.py

bench-knowledge: encoder
	@$(PY) bench/knowledge.py

bench-load: model
	@$(PY) bench/load.py $(LOAD_ARGS)

bench-report: setup
	@$(PY) bench/report.py --events 1000000

imports: setup
	@$(VENV)/bin/lint-imports --no-cache

lint: imports
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check . || true

clean:
	rm -rf models results .rasa var/run var/log
