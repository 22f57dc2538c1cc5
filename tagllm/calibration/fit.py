"""Per-class calibration maps fitted on (P(yes), right or wrong) pairs.

Every class gets Platt scaling, sigmoid(a * logit(p) + b), fitted by maximum a posteriori with a
Gaussian prior centred on one global fit over all classes: a class with few verified candidates
stays near the global map, one with many follows its own data (`prior_strength` is the prior's
weight in samples). A class with data enough (`min_isotonic` candidates, `min_isotonic_each`
right and wrong) gets isotonic regression instead (pool-adjacent-violators, linear between
the pooled blocks), which bends where a sigmoid cannot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from tagllm.vocab.calibration import EPSILON, MAX_KNOTS, Calibration


@dataclasses.dataclass(frozen=True)
class FitSettings:
    prior_strength: float = 20.0
    min_isotonic: int = 400
    min_isotonic_each: int = 40
    # "platt" only, or "auto": isotonic where data is enough.
    method: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in ("auto", "platt"):
            raise ValueError("method must be 'auto' or 'platt'")
        if self.prior_strength < 0:
            raise ValueError("prior_strength must not be negative")


def _logits(probabilities: Sequence[float]) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def fit_platt(
    probabilities: Sequence[float],
    positives: Sequence[bool],
    prior: tuple[float, float] = (1.0, 0.0),
    strength: float = 1e-3,
) -> Calibration:
    """(a, b) maximising the log-likelihood minus strength/2 * |(a, b) - prior|^2 (Newton steps)."""
    z = _logits(probabilities)
    y = np.asarray(positives, dtype=float)
    theta = np.array(prior, dtype=float)
    centre = theta.copy()
    features = np.stack([z, np.ones_like(z)], axis=1)

    def loss(t: np.ndarray) -> float:
        margin = features @ t
        # -log-likelihood: log(1 + e^m) - y * m, computed without overflow.
        return float(
            np.sum(np.logaddexp(0.0, margin) - y * margin) + strength / 2 * np.sum((t - centre) ** 2)
        )

    current = loss(theta)
    for _ in range(100):
        q = 0.5 * (1 + np.tanh(0.5 * (features @ theta)))  # the sigmoid, without overflow
        gradient = features.T @ (q - y) + strength * (theta - centre)
        hessian = features.T @ (features * (q * (1 - q))[:, None]) + (strength + 1e-9) * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        # Newton's step, halved until the loss goes down (a full step from far away overshoots).
        for _ in range(40):
            candidate = theta - step
            value = loss(candidate)
            if value <= current:
                break
            step = step / 2
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if np.abs(step).max() < 1e-10 or improvement < 1e-12:
            break
    # A calibration never reverses the order of scores (a > 0), and stays in the schema's range.
    a = float(np.clip(theta[0], 1e-3, 100.0))
    b = float(np.clip(theta[1], -100.0, 100.0))
    return Calibration("platt", a=a, b=b)


def fit_isotonic(probabilities: Sequence[float], positives: Sequence[bool]) -> Calibration:
    """Pool-adjacent-violators over the sorted P(yes); knots at the pooled blocks' mean P(yes)."""
    order = np.argsort(np.asarray(probabilities, dtype=float), kind="stable")
    x = np.asarray(probabilities, dtype=float)[order]
    y = np.asarray(positives, dtype=float)[order]
    # Blocks as [sum_y, sum_x, weight]; merge while the last two are out of order.
    blocks: list[list[float]] = []
    for xi, yi in zip(x, y, strict=True):
        blocks.append([yi, xi, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]:
            last = blocks.pop()
            for k in range(3):
                blocks[-1][k] += last[k]
    knots_x = np.array([b[1] / b[2] for b in blocks])
    knots_y = np.array([b[0] / b[2] for b in blocks])
    if len(knots_x) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(knots_x) - 1, MAX_KNOTS).round().astype(int))
        knots_x, knots_y = knots_x[keep], knots_y[keep]
    return Calibration(
        "isotonic",
        x=tuple(float(v) for v in np.maximum.accumulate(knots_x)),
        y=tuple(float(v) for v in np.maximum.accumulate(knots_y)),
    )


def fit_classes(
    samples: Mapping[str, tuple[Sequence[float], Sequence[bool]]], settings: FitSettings = FitSettings()
) -> tuple[Calibration, dict[str, Calibration]]:
    """(the global Platt map, each class's map) from class -> (P(yes) values, right or wrong)."""
    every_p = [p for probabilities, _ in samples.values() for p in probabilities]
    every_y = [y for _, positives in samples.values() for y in positives]
    if not every_p:
        raise ValueError("no verified candidates to fit a calibration on")
    overall = fit_platt(every_p, every_y)
    fitted = {}
    for name, (probabilities, positives) in samples.items():
        right = sum(bool(y) for y in positives)
        wrong = len(positives) - right
        enough = len(positives) >= settings.min_isotonic and min(right, wrong) >= settings.min_isotonic_each
        if settings.method == "auto" and enough:
            fitted[name] = fit_isotonic(probabilities, positives)
        else:
            fitted[name] = fit_platt(
                probabilities, positives, (overall.a, overall.b), settings.prior_strength
            )
    return overall, fitted
