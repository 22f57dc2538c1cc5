"""The `tagllm` command."""
