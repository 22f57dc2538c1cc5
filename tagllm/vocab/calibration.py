"""A category's calibration: the map from the model's P(yes) to a probability that the label is right.

In a vocabulary file, under a category:

    calibration: {method: platt, a: 1.8, b: -0.4}                 # sigmoid(a * logit(p) + b)
    calibration: {method: isotonic, x: [0.1, 0.5, 0.9], y: [0.02, 0.3, 0.95]}   # piecewise linear

`tagllm calibrate` fits them (tagllm/calibration); the strategies apply them to every yes/no
answer and compare the result with the category's threshold. Both maps are non-decreasing, so a
calibration changes which scores pass a threshold but never the order of one class's scores.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_right
from typing import Any

# P(yes) is clipped this far from 0 and 1 before its logit is taken.
EPSILON = 1e-6
MAX_KNOTS = 64


def logit(p: float) -> float:
    p = min(max(p, EPSILON), 1 - EPSILON)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


@dataclasses.dataclass(frozen=True)
class Calibration:
    method: str
    # platt: sigmoid(a * logit(p) + b)
    a: float = 1.0
    b: float = 0.0
    # isotonic: knots of a non-decreasing piecewise-linear map, flat beyond the ends
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, probability: float) -> float:
        if self.method == "platt":
            return sigmoid(self.a * logit(probability) + self.b)
        i = bisect_right(self.x, probability)
        if i == 0:
            return self.y[0]
        if i == len(self.x):
            return self.y[-1]
        x0, x1, y0, y1 = self.x[i - 1], self.x[i], self.y[i - 1], self.y[i]
        return y0 + (y1 - y0) * (probability - x0) / (x1 - x0) if x1 > x0 else y1

    def to_plain(self) -> dict[str, Any]:
        if self.method == "platt":
            return {"method": "platt", "a": self.a, "b": self.b}
        return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}


def _number(value: Any, where: str, fail, low: float = -math.inf, high: float = math.inf) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise fail(where, "must be a finite number")
    if not low <= value <= high:
        raise fail(where, f"must be in [{low}, {high}]")
    return float(value)


def parse_calibration(raw: Any, where: str, fail) -> Calibration | None:
    """The calibration of a category entry, validated; `fail(where, message)` makes the error."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping with 'method'")
    method = raw.get("method")
    if method == "platt":
        if set(raw) - {"method", "a", "b"}:
            raise fail(where, f"unknown keys {sorted(set(raw) - {'method', 'a', 'b'})}")
        # a > 0: a calibration may sharpen or soften scores but never reverse their order.
        a = _number(raw.get("a"), f"{where}.a", fail, 0.0, 100.0)
        if a == 0:
            raise fail(f"{where}.a", "must be greater than 0")
        return Calibration("platt", a=a, b=_number(raw.get("b"), f"{where}.b", fail, -100.0, 100.0))
    if method == "isotonic":
        if set(raw) - {"method", "x", "y"}:
            raise fail(where, f"unknown keys {sorted(set(raw) - {'method', 'x', 'y'})}")
        xs, ys = raw.get("x"), raw.get("y")
        if not isinstance(xs, list) or not isinstance(ys, list) or not 1 <= len(xs) == len(ys) <= MAX_KNOTS:
            raise fail(where, f"x and y must be lists of the same length, 1 to {MAX_KNOTS} knots")
        x = tuple(_number(v, f"{where}.x[{i}]", fail, 0.0, 1.0) for i, v in enumerate(xs))
        y = tuple(_number(v, f"{where}.y[{i}]", fail, 0.0, 1.0) for i, v in enumerate(ys))
        if any(b < a for a, b in zip(x, x[1:], strict=False)) or any(
            b < a for a, b in zip(y, y[1:], strict=False)
        ):
            raise fail(where, "x and y must be non-decreasing")
        return Calibration("isotonic", x=x, y=y)
    raise fail(f"{where}.method", "must be 'platt' or 'isotonic'")
