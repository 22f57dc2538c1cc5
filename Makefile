PYTHON := .venv/bin/python
VENV := .venv/.installed

.PHONY: setup run test test-fast protos lint format clean

$(VENV): pyproject.toml scripts/setup
	./scripts/setup

setup: $(VENV)  ## create .venv with everything the stack and the tests need

run: $(VENV)  ## start the local stack, tag the sample images with every strategy, stop
	$(PYTHON) -m tagllm.cli.main demo

test: $(VENV)  ## the whole suite: unit, integration (real Triton) and end-to-end (the whole stack)
	$(PYTHON) -m pytest

test-fast: $(VENV)  ## unit tests only
	$(PYTHON) -m pytest tests/unit

protos: $(VENV)  ## regenerate tagllm/v1 and tagllm/internal/v1 from protos/, and config.pbtxt's tensors
	$(PYTHON) scripts/gen_protos.py
	$(PYTHON) -m tagllm.mllm.tensors --write services/triton/model_repository/mllm/config.pbtxt

lint: $(VENV)  ## ruff (lint and format), mypy (the library and the services), the layering contracts
	.venv/bin/ruff check tagllm services tests scripts deploy
	.venv/bin/ruff format --check tagllm services tests scripts deploy
	.venv/bin/mypy tagllm services
	.venv/bin/lint-imports --no-cache --no-logo

format: $(VENV)
	.venv/bin/ruff format tagllm services tests scripts deploy
	.venv/bin/ruff check --fix tagllm services tests scripts deploy

clean:
	rm -rf .venv .pytest_cache .ruff_cache
