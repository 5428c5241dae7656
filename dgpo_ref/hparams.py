"""Hyper-parameter domains (docs/methods.md), shared by every method's registry row."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass


def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _positive_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and int(x) > 0


@dataclass(frozen=True)
class Domain:
    """A named constraint: ``text`` is how error messages state it."""

    text: str
    holds: Callable[[object], bool]

    def check(self, name: str, value, method: str) -> None:
        if not self.holds(value):
            raise ValueError(f"{name}={value!r} is out of range for method {method!r}: {self.text}")


DOMAINS: dict[str, Domain] = {
    "eps_low": Domain("eps_low must be a real number with 0 < eps_low < 1", lambda x: _real(x) and 0 < x < 1),
    "eps_high": Domain("eps_high must be a finite real number > 0", lambda x: _real(x) and x > 0),
    "n": Domain("n must be a positive integer", _positive_int),
    "m": Domain("m must be a positive integer", _positive_int),
    "beta1": Domain("beta1 must be a finite real number > 0", lambda x: _real(x) and x > 0),
    "beta2": Domain("beta2 must be a finite real number > 0", lambda x: _real(x) and x > 0),
    "dual_clip": Domain(
        "dual_clip must be None or a finite real number > 1", lambda x: x is None or (_real(x) and x > 1)
    ),
}
