"""Hyper-parameters: symbol, default, domain, proof samples and CLI flag.

A :class:`HParam` knows its domain as a SymPy condition (:meth:`HParam.condition`, used by the
proofs and the SMT encoding) and checks a user's value (:meth:`HParam.check`, used by the CLIs),
returning a one-line message naming the parameter and the constraint.

The constants below are building blocks: a method's record (``spec/methods/<name>.py``) lists the
ones it takes, with its own default (``EPS_HIGH.with_default(0.28)``: the building blocks have none,
:data:`UNSET`, and a record that forgets it is refused) and, where it differs, its own domain
(:meth:`HParam.with_domain`). Everything downstream (dgpo_ref's generated defaults and
domains, the proof engine's samples, the CLI flags, docs/methods.md's table) is derived from the
records, never from these constants directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import sympy as sp

from spec import symbols as S


class _Unset:
    """The default of a building block: none (each record gives its own with ``with_default``)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True)
class HParam:
    """One hyper-parameter of a method."""

    name: str
    symbol: sp.Symbol
    default: float | int | None | _Unset  # UNSET only in the building blocks below
    constraint: str  # human-readable domain, e.g. "0 < eps_low < 1"
    lower: float  # open lower bound
    upper: float = math.inf  # open upper bound
    integer: bool = False
    optional: bool = False  # None allowed (means "off"; represented as sympy.oo)
    #: values the proof engine scans for counterexamples (exact; inside the domain; the first is
    #: the most typical). Empty: the proofs hold the parameter at the method's default (dual_clip).
    samples: tuple[sp.Rational, ...] = ()
    #: the command-line flag that holds it fixed (``dgpo conformance``, ``dgpo derive``)
    flag: str = ""

    def __post_init__(self) -> None:
        if not self.flag:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    def with_default(self, default: float | int | None) -> HParam:
        return replace(self, default=default)

    def with_domain(self, constraint: str, lower: float, upper: float = math.inf) -> HParam:
        """The same parameter with another open domain (lower, upper) for one method."""
        return replace(self, constraint=constraint, lower=lower, upper=upper)

    def condition(self, sym: sp.Expr | None = None) -> sp.Boolean:
        """The domain as a SymPy condition on ``sym`` (default: this parameter's symbol)."""
        x = self.symbol if sym is None else sym
        lower = sp.Rational(str(self.lower))
        cond = [x >= lower + 1] if self.integer else [x > lower]
        if self.upper != math.inf:
            cond.append(x < sp.Rational(str(self.upper)))
        return sp.And(*cond)

    def exact(self, value: float | int | None) -> sp.Expr:
        """A user's value as an exact SymPy number (None -> oo, i.e. the option is off)."""
        if value is None:
            return sp.oo
        return sp.Integer(value) if self.integer else sp.nsimplify(str(value), rational=True)

    def check(self, value: float | int | None) -> str | None:
        """None if ``value`` is in the domain, else a one-line message naming the constraint."""
        if value is None:
            return None if self.optional else f"{self.name} must be set ({self.constraint})"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name} must be finite ({self.constraint}), got {value}"
        if self.integer and (float(value) != int(value) or value < self.lower + 1):
            return f"{self.name} must be a positive integer ({self.constraint}), got {value:g}"
        if not (value > self.lower and value < self.upper):
            return f"{self.name} must satisfy {self.constraint}, got {value:g}"
        return None


_R, _I = sp.Rational, sp.Integer
EPS_LOW = HParam("eps_low", S.eps_low, UNSET, "0 < eps_low < 1", 0.0, 1.0,
                 samples=(_R(1, 5), _R(1, 2), _R(9, 10), _R(1, 20)))
EPS_HIGH = HParam("eps_high", S.eps_high, UNSET, "eps_high > 0", 0.0,
                  samples=(_R(1, 5), _R(7, 25), _I(1), _I(3)))
N = HParam("n", S.n, UNSET, "n >= 1, integer", 0, integer=True, samples=(_I(1), _I(2), _I(3)))
M = HParam("m", S.m, UNSET, "m >= 1, integer", 0, integer=True, samples=(_I(1), _I(2), _I(3)))
BETA1 = HParam("beta1", S.beta1, UNSET, "beta1 > 0", 0.0, samples=(_R(1, 2), _I(2), _I(1), _R(1, 10)))
BETA2 = HParam("beta2", S.beta2, UNSET, "beta2 > 0", 0.0, samples=(_I(1), _R(1, 2), _I(3), _R(1, 10)))
DUAL_CLIP = HParam("dual_clip", S.dual_clip, UNSET, "dual_clip None or dual_clip > 1", 1.0, optional=True)
#: DPPO's trust-region thresholds on the token's divergence (dppo_tv, dppo_kl)
DELTA_LOW = HParam("delta_low", sp.Symbol("delta_low", positive=True), UNSET, "delta_low > 0", 0.0,
                   samples=(_R(1, 5), _R(1, 20)))
DELTA_HIGH = HParam("delta_high", sp.Symbol("delta_high", positive=True), UNSET, "delta_high > 0", 0.0,
                    samples=(_R(1, 5), _R(1, 20)))
#: the cap of a truncated importance weight, min(r, trunc) (tis, dppo_tv, dppo_kl)
TRUNC = HParam("trunc", sp.Symbol("trunc", positive=True), UNSET, "trunc > 0", 0.0,
               samples=(_I(2), _I(3), _R(1, 5), _I(20)))
