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

# Images: <IMAGE_PREFIX>-train, -serve (torch, GPU or CPU) and -serve-cpu (OpenVINO, no torch),
# tagged with the git revision and latest.
IMAGE_PREFIX ?= sm-vision
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
TRAIN_IMAGE := $(IMAGE_PREFIX)-train
SERVE_IMAGE := $(IMAGE_PREFIX)-serve
SERVE_CPU_IMAGE := $(IMAGE_PREFIX)-serve-cpu
IMAGE_TARGETS := train serve serve-cpu
# Build-time options: BASE_IMAGE (default: NVIDIA's CUDA image), CPU_BASE_IMAGE (the CPU serving
# image's; default ubuntu:24.04, or BASE_IMAGE when that is given), BAKE_WEIGHTS="resnet50 vgg16",
# PIP_FIND_LINKS (a local wheel folder/URL), BUILD_CA_URL (a CA bundle pip trusts during the
# build only), DOCKER_BUILD_FLAGS (e.g. --network host).
CPU_BASE_IMAGE ?= $(BASE_IMAGE)
BUILD_ARGS := $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
              $(if $(CPU_BASE_IMAGE),--build-arg CPU_BASE_IMAGE=$(CPU_BASE_IMAGE)) \
              $(if $(BAKE_WEIGHTS),--build-arg BAKE_WEIGHTS="$(BAKE_WEIGHTS)") \
              $(if $(PIP_FIND_LINKS),--build-arg PIP_FIND_LINKS=$(PIP_FIND_LINKS)) \
              $(if $(BUILD_CA_URL),--build-arg BUILD_CA_URL=$(BUILD_CA_URL))
DOCKER_BUILD_FLAGS ?=
# Push target: ECR in REGION (or AWS_REGION) unless REGISTRY=host[:port] names another.
REGISTRY ?=
REGION ?=

.PHONY: help setup demo test test-container lint format build push lock local-train \
        local-serve tune-local predict clean docker-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the project (train, serve, debug) and dev tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[serve,launch,demo,dev,debug,export,train]'
	touch $@

demo: setup ## train on the digits sample, serve it and predict held-out images (no AWS, no Docker)
	local_test/demo.sh

test: setup ## run the test suite
	$(BIN)/pytest $(PYTEST_ARGS)

test-container: setup build ## build the images and run the container test tier
	$(BIN)/pytest -m container $(PYTEST_ARGS)

lint: setup ## ruff, hadolint, compose file
	$(BIN)/ruff check .
	$(BIN)/hadolint containers/Dockerfile
	@if command -v docker-compose >/dev/null; then docker-compose config -q; \
	 elif docker compose version >/dev/null 2>&1; then docker compose config -q; \
	 else echo "skipping compose validation: neither docker compose nor docker-compose found"; fi

docker-check:
	@command -v docker >/dev/null || { echo "error: docker not found; install Docker (or use the process-mode targets)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: cannot reach a Docker engine (is dockerd running? DOCKER_HOST=$${DOCKER_HOST:-unset})"; exit 1; }

build: docker-check ## build the train, serve and serve-cpu images (tags: git revision, latest)
	@for target in $(IMAGE_TARGETS); do \
	  echo "== building $(IMAGE_PREFIX)-$$target:$(GIT_REV)"; start=$$(date +%s); \
	  docker build -f containers/Dockerfile --target $$target $(BUILD_ARGS) $(DOCKER_BUILD_FLAGS) \
	    -t $(IMAGE_PREFIX)-$$target:$(GIT_REV) -t $(IMAGE_PREFIX)-$$target:latest . ; \
	  echo "== $(IMAGE_PREFIX)-$$target built in $$(( $$(date +%s) - start )) s:" \
	       "$$(docker image inspect --format '{{.Size}}' $(IMAGE_PREFIX)-$$target:latest) bytes"; \
	done

push: setup docker-check ## push the three images (ECR; or REGISTRY=host:port)
	$(BIN)/python containers/push.py --images $(TRAIN_IMAGE) $(SERVE_IMAGE) $(SERVE_CPU_IMAGE) \
	  --tags $(GIT_REV) latest \
	  $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(REGION),--region $(REGION))

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

local-train: setup ## train against local_test/test_dir as a local process
	local_test/train_local.sh

local-serve: setup ## serve local_test/test_dir/model on :8080 as a local process
	local_test/serve_local.sh

tune-local: setup ## tune lr and batch size on the digits data with local train processes
	local_test/tune_local.sh

predict: ## post FILE to the local server: make predict FILE=img.png
	local_test/predict.sh $(FILE)

lock: setup ## regenerate requirements/*.txt (the images' exact pins) from pyproject.toml
	$(BIN)/python containers/lock.py

clean: ## remove generated data, models and caches (keeps .venv)
	rm -rf local_test/test_dir/input/data/* local_test/test_dir/model/* \
	       local_test/test_dir/output/* local_test/test_dir/checkpoints local_test/heldout \
	       .pytest_cache .ruff_cache
