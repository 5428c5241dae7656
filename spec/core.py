"""Regions, branches and the method record.

A method is its weight ``W`` on ∇π, given per region as a :class:`Branch` (``W`` and the surrogate
``J`` with stop-gradients, both in ``p``, ``p_old`` and the hyper-parameters). Everything else is
derived from those two expressions: ``V = p·W``, ``V`` in the ratio ``r``, the value of ``J``.

The :class:`MethodSpec` in ``spec/methods/<name>.py`` is the one record of a method: its branches,
its hyper-parameters (defaults, domains, proof samples, CLI flags), the status every proof
obligation is expected to have, and a few worked examples typed from the formulas by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

import sympy as sp

from spec import symbols as S
from spec.hparams import UNSET, HParam

#: region names, in the order of docs/methods.md
REGIONS: tuple[str, ...] = ("IN", "LN", "HP", "LP", "HN")

#: (region, sign of A) pairs that carry a gradient; IN is met with either sign
CASES: tuple[tuple[str, int], ...] = (("IN", 1), ("IN", -1), ("LN", -1), ("HP", 1), ("LP", 1), ("HN", -1))

#: the breakpoints in r, as expressions in the hyper-parameters
LEFT = 1 - S.eps_low
RIGHT = 1 + S.eps_high

#: the statuses of a proof obligation (proofs/engine.py decides them; unknown is a failure)
PROVED, DISPROVED = "proved", "disproved"


class Example(NamedTuple):
    """A worked example at the method's defaults: the token's ratio ``r``, advantage ``A`` and the
    weight ``V`` on ∇log π it must get, a number computed by hand from the formulas (not from the
    spec's expressions): tests check the spec and dgpo_ref against it. ``p_old`` is given only for
    a method whose V depends on it (DPPO's masks); the tests pick any p_old otherwise."""

    r: float
    A: float
    V: float
    p_old: float | None = None


class LibraryExample(NamedTuple):
    """One completion token as a library's own loss code computes it (float64, the library's
    defaults, or ``hparams`` where the library's effective value differs from the record's
    default): ``loss`` and ``V = −(d loss/d log_prob)/A``. Recomputed by
    scripts/library_examples.py; tests check that the record's V and J reproduce them."""

    library: str  # "verl" or "trl"
    r: float
    p_old: float
    A: float
    loss: float
    V: float
    hparams: Mapping[str, float] | None = None


#: junctions where a region meets IN: (outer region, breakpoint name, sign of A)
JUNCTIONS: tuple[tuple[str, str, int], ...] = (("LN", "left", -1), ("LP", "left", 1),
                                               ("HP", "right", 1), ("HN", "right", -1))


def region_condition(region: str) -> sp.Boolean:
    """The region as a condition on ``r`` and ``A`` (breakpoints belong to IN)."""
    r, A = S.r, S.A
    return {
        "IN": sp.And(r >= LEFT, r <= RIGHT),
        "LN": sp.And(r < LEFT, A < 0),
        "HP": sp.And(r > RIGHT, A > 0),
        "LP": sp.And(r < LEFT, A >= 0),
        "HN": sp.And(r > RIGHT, A <= 0),
    }[region]


def ratio_condition(region: str) -> sp.Boolean:
    """The region's condition on ``r`` alone (the sign of A is fixed by the case)."""
    r = S.r
    return {"IN": sp.And(r >= LEFT, r <= RIGHT), "LN": r < LEFT, "LP": r < LEFT,
            "HP": r > RIGHT, "HN": r > RIGHT}[region]


@dataclass(frozen=True)
class Branch:
    """A method on one region: weight ``W`` on ∇π and surrogate ``J`` (with ``sg``), in p, p_old."""

    W: sp.Expr
    J: sp.Expr

    @classmethod
    def from_V(cls, V_r: sp.Expr, J: sp.Expr) -> Branch:
        """Build from the weight on ∇log π written in the ratio: W = V(r = p/p_old) / p."""
        return cls(W=sp.sympify(S.from_ratio(V_r) / S.p), J=sp.sympify(J))

    @cached_property
    def V(self) -> sp.Expr:
        """V = p·W, in p and p_old."""
        return sp.powsimp(S.p * self.W, force=True)

    @cached_property
    def V_r(self) -> sp.Expr:
        """V in the ratio r (p_old cancels for every method)."""
        return S.to_ratio(self.V)

    @cached_property
    def J_value(self) -> sp.Expr:
        """The surrogate's value (stop-gradients removed), in p and p_old."""
        return S.strip_sg(self.J)


@dataclass(frozen=True)
class MethodSpec:
    """One method: hyper-parameters and a :class:`Branch` per region."""

    name: str
    title: str
    summary: str
    hparams: tuple[HParam, ...]
    branches: Mapping[str, Branch]
    #: extra named constants (DGPO: C_left, C_right), symbol name -> expression
    constants: Mapping[str, sp.Expr] = field(default_factory=dict)
    #: the proof obligations (names of proofs.theorems.THEOREMS) this method is expected to fail,
    #: each with the reason; every other obligation is expected proved. `dgpo prove --check`
    #: fails when a result differs.
    disproved: Mapping[str, str] = field(default_factory=dict)
    #: worked examples at the defaults, one per region at least (tests check spec and dgpo_ref)
    examples: tuple[Example, ...] = ()
    #: the same loss as the libraries compute it (verl, TRL), with their numbers
    library: tuple[LibraryExample, ...] = ()
    #: where the libraries have this loss, under which names and defaults (docs/methods.md's table)
    sources: str = ""

    def __post_init__(self) -> None:
        missing = set(REGIONS) - set(self.branches)
        if missing:
            raise ValueError(f"method {self.name}: no branch for regions {sorted(missing)}")
        unset = [h.name for h in self.hparams if h.default is UNSET]
        if unset:
            raise ValueError(f"method {self.name}: hyper-parameter {unset[0]} has no default; take it "
                             f"with .with_default(value)")

    # --- per-region expressions -------------------------------------------------------------
    def W(self, region: str) -> sp.Expr:
        """Weight on ∇π, in p, p_old, hyper-parameters (and A where the sign matters)."""
        return self.branches[region].W

    def V(self, region: str) -> sp.Expr:
        """Weight on ∇log π, V = p·W, in p and p_old."""
        return self.branches[region].V

    def V_r(self, region: str) -> sp.Expr:
        """Weight on ∇log π in the ratio r."""
        return self.branches[region].V_r

    def J(self, region: str) -> sp.Expr:
        """Surrogate with stop-gradients ``sg``: d/dp J = W."""
        return self.branches[region].J

    def J_value(self, region: str) -> sp.Expr:
        """Value of the surrogate (``sg`` removed), in p and p_old."""
        return self.branches[region].J_value

    def J_r(self, region: str) -> sp.Expr:
        """Value of the surrogate in r and p_old (p_old stays only where J has log p)."""
        return S.to_ratio(self.J_value(region))

    def case(self, expr: sp.Expr, sign: int) -> sp.Expr:
        """Resolve a dependence on the sign of A (ASPO's IN) for A = sign·1."""
        return sp.piecewise_fold(expr.subs(S.A, sign)) if expr.has(S.A) else expr

    def expected(self, theorem: str) -> str:
        """The status proof obligation ``theorem`` is expected to have for this method."""
        return DISPROVED if theorem in self.disproved else PROVED

    # --- hyper-parameters -------------------------------------------------------------------
    @property
    def hparam_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hparams)

    def hparam(self, name: str) -> HParam:
        for h in self.hparams:
            if h.name == name:
                return h
        raise KeyError(f"{name} is not a hyper-parameter of {self.name}")

    def defaults(self) -> dict[str, float | int | None]:
        return {h.name: h.default for h in self.hparams}

    def subs_values(self, values: Mapping[str, float | int | None] | None = None) -> dict:
        """{symbol: exact value} for the defaults overridden by ``values`` (None -> oo)."""
        merged = {**self.defaults(), **(values or {})}
        return {self.hparam(k).symbol: self.hparam(k).exact(v) for k, v in merged.items()}

    def domain(self) -> sp.Boolean:
        """All hyper-parameter domains as one SymPy condition."""
        return sp.And(*(h.condition() for h in self.hparams))

    def breakpoints(self) -> dict[str, sp.Expr]:
        """Where W may change formula, in r: left, right, and dual_clip when the method has it."""
        out = {"left": LEFT, "right": RIGHT}
        if "dual_clip" in self.hparam_names:
            out["dual_clip"] = S.dual_clip
        return out

    # --- mutation (for tests and what-if derivations) ----------------------------------------
    def with_branch(self, region: str, branch: Branch, name: str | None = None) -> MethodSpec:
        """A copy with one region's branch replaced (used to build mutants)."""
        return replace(self, name=name or f"{self.name}*", branches={**self.branches, region: branch})
