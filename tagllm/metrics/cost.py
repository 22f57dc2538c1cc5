"""What model time costs: the one formula every report and metric uses."""

from __future__ import annotations

# Dollars per GPU-hour when none is configured (a cloud price for one data-center GPU).
DEFAULT_GPU_PRICE_PER_HOUR = 2.5
# Dollars a human annotator costs per image when none is configured.
DEFAULT_HUMAN_COST_PER_IMAGE = 0.05


def gpu_dollars(compute_seconds: float, price_per_hour: float) -> float:
    """The price of `compute_seconds` of model time (GPU-seconds on a GPU)."""
    return compute_seconds * price_per_hour / 3600.0
