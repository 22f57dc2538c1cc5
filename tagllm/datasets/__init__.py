"""Dataset readers and the synthetic dataset generator."""
