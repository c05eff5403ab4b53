# sm-vision: open SageMaker training and serving images for computer vision.
# `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup demo test lint format local-train local-serve predict clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the project (train, serve) and dev tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[serve,demo,dev]'
	touch $@

demo: setup ## train on the digits sample, serve it and predict held-out images (no AWS, no Docker)
	local_test/demo.sh

test: setup ## run the test suite
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

local-train: setup ## train against local_test/test_dir as a local process
	local_test/train_local.sh

local-serve: setup ## serve local_test/test_dir/model on :8080 as a local process
	local_test/serve_local.sh

predict: ## post FILE to the local server: make predict FILE=img.png
	local_test/predict.sh $(FILE)

clean: ## remove generated data, models and caches (keeps .venv)
	rm -rf local_test/test_dir/input/data/* local_test/test_dir/model/* \
	       local_test/test_dir/output/* local_test/test_dir/checkpoints local_test/heldout \
	       .pytest_cache .ruff_cache
