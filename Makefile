PYTHON ?= .venv/bin/python

.PHONY: setup run test protos lint format

setup:  ## create .venv with everything the stack and the tests need
	./scripts/setup

run:  ## start the local stack and tag the sample images through it
	$(PYTHON) -m tagllm.cli.main demo

test:  ## the whole test suite (starts its own Triton, Prometheus and services)
	$(PYTHON) -m pytest

protos:  ## regenerate tagllm/v1 from protos/
	$(PYTHON) scripts/gen_protos.py

lint:
	.venv/bin/ruff check tagllm services tests
	.venv/bin/ruff format --check tagllm services tests

format:
	.venv/bin/ruff format tagllm services tests
	.venv/bin/ruff check --fix tagllm services tests
