"""Bulk work over datasets: annotation runs, exports, evaluation, downstream training."""
