"""Deciding claims: proved / disproved (with a counterexample) / unknown.

A theorem is a list of claims about one method. Each claim is decided first for symbolic n, m
(SymPy: ``simplify``, ``limit``; z3 when the claim has no n, m), and, when that cannot decide it,
per instance (n, m) in 1..6 x 1..6 with z3 after the substitution r = u^M, 1 + eps_high = v^M
(M = m) that makes DGPO's HP weight polynomial. Counterexamples are searched first at sample
points (scanned in floats, then re-checked exactly with SymPy before they are reported).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

import sympy as sp

from proofs import z3bridge
from spec import symbols as S

PROVED, DISPROVED, UNKNOWN = "proved", "disproved", "unknown"
#: the (n, m) instances used where a claim cannot be proved for symbolic n, m
INSTANCE_RANGE = range(1, 7)


def _samples() -> dict[sp.Symbol, list[sp.Rational]]:
    """Sample values per symbol for the counterexample search: p_old's here, every hyper-parameter's
    from the method records (``HParam.samples``); two records may not disagree on one symbol."""
    from spec.methods import METHODS

    out: dict[sp.Symbol, list[sp.Rational]] = {S.p_old: [sp.Rational(1, 2), sp.Rational(1, 40)]}
    for spec in METHODS.values():
        for h in spec.hparams:
            if h.samples and out.setdefault(h.symbol, list(h.samples)) != list(h.samples):
                raise ValueError(f"{spec.name}: samples of {h.name} differ from another method's")
    return out


#: sample values per symbol for the counterexample search (all inside the domains)
SAMPLES: dict[sp.Symbol, list[sp.Rational]] = _samples()
#: r candidates relative to the breakpoints (filtered by each claim's region)
_LEFT_T = [sp.Rational(1, 1000), sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(99, 100)]
_RIGHT_T = [sp.Rational(101, 100), sp.Integer(2), sp.Integer(10)]
_MAX_COMBOS = 24
u, v = sp.symbols("u v", positive=True)


@dataclass(frozen=True)
class Outcome:
    status: str
    how: str
    counterexample: dict | None = None


@dataclass
class Context:
    """What the claims of one method are decided against."""

    domain: sp.Boolean  # hyper-parameter domains (n, m excluded: symbolic or instanced)
    fixed: dict = field(default_factory=dict)  # substitutions applied to every claim (dual_clip)
    family: tuple[sp.Symbol, ...] = ()  # n and/or m when the method has them

    def prepare(self, expr: sp.Basic) -> sp.Basic:
        """Claims are stated in r: p = r·p_old; fixed hyper-parameters substituted."""
        return sp.sympify(expr).subs(S.p, S.r * S.p_old).subs(self.fixed)

    def instances(self) -> list[dict[sp.Symbol, int]]:
        ranges = [[(s, k) for k in INSTANCE_RANGE] for s in self.family]
        return [dict(combo) for combo in itertools.product(*ranges)]


def instance_label(inst: dict) -> str:
    return ",".join(f"{s.name}={k}" for s, k in inst.items()) if inst else "general"


# --- sample points ------------------------------------------------------------------------
def _combos(symbols: list[sp.Symbol]) -> list[dict]:
    names = [s for s in symbols if s in SAMPLES]
    every = list(itertools.product(*(SAMPLES[s] for s in names)))
    if len(every) > _MAX_COMBOS:
        every = every[:1] + random.Random(0).sample(every[1:], _MAX_COMBOS - 1)
    return [dict(zip(names, vals)) for vals in every]


def _points(exprs: list[sp.Basic], where: sp.Boolean) -> list[dict]:
    free = sorted(set().union(*(e.free_symbols for e in exprs)) | where.free_symbols, key=str)
    out = []
    for combo in _combos(free):
        if S.r not in free:
            out.append(combo)
            continue
        left, right = (1 - combo.get(S.eps_low, sp.Rational(1, 5)), 1 + combo.get(S.eps_high, sp.Rational(1, 5)))
        for r in [left * t for t in _LEFT_T] + [left, sp.Integer(1), right] + [right * t for t in _RIGHT_T]:
            point = {**combo, S.r: r}
            if where.subs(point) is sp.true:
                out.append(point)
    return out


def _floats(f, point: dict, order: list[sp.Symbol]):
    try:
        return f(*(float(point[s]) for s in order))
    except (ValueError, ZeroDivisionError, OverflowError, TypeError, KeyError):
        return None


def _show(point: dict) -> dict[str, str]:
    return {s.name: str(val) for s, val in sorted(point.items(), key=lambda kv: kv[0].name)}


def search_identity(lhs: sp.Expr, rhs: sp.Expr, where: sp.Boolean) -> dict | None:
    """A point of ``where`` where lhs != rhs (checked exactly), or None."""
    d = lhs - rhs
    order = sorted(d.free_symbols, key=str)
    f = sp.lambdify(order, d, modules="math")
    for point in _points([d], where):
        val = _floats(f, point, order)
        if val is None or not (abs(val) > 1e-9 or math.isnan(val)):
            continue
        exact = sp.N(d.subs(point), 50)
        if exact.is_number and abs(exact) > sp.Float("1e-40", 50):
            return {**_show(point), "lhs": str(sp.N(lhs.subs(point), 12)), "rhs": str(sp.N(rhs.subs(point), 12))}
    return None


def search_statement(statement: sp.Boolean, where: sp.Boolean) -> dict | None:
    """A point of ``where`` where ``statement`` is false (checked exactly), or None."""
    order = sorted(statement.free_symbols, key=str)
    f = sp.lambdify(order, statement, modules="math")
    for point in _points([statement], where):
        if _floats(f, point, order) is not False:
            continue
        if statement.subs(point) is sp.false:
            return _show(point)
    return None


# --- z3 -----------------------------------------------------------------------------------
def polynomialize(expr: sp.Basic, power: int) -> sp.Basic:
    """r = u^power, eps_high = v^power − 1: DGPO's HP weight becomes polynomial in u, v."""
    return sp.powsimp(sp.sympify(expr).subs({S.r: u**power, S.eps_high: v**power - 1}), force=True)


def by_z3(statement: sp.Boolean, where: sp.Boolean, ctx: Context, power: int) -> Outcome:
    """Prove ``domain ∧ where -> statement`` with z3 after :func:`polynomialize`."""
    stmt = polynomialize(statement, power)
    assume = polynomialize(sp.And(ctx.domain, where), power)
    free = sorted((stmt.free_symbols | assume.free_symbols) - {u, v}, key=str)
    extra = [v**power > 1]  # eps_high > 0 (SymPy folded it to True before the substitution)
    if S.p_old in free:
        extra += [S.p_old <= 1, u**power * S.p_old <= 1]
    how = "z3" if power == 1 else f"z3, p = u^{power}"
    try:
        status, model = z3bridge.refute(stmt, sp.And(assume, *extra), [u, v] + free)
    except z3bridge.Unsupported as exc:
        return Outcome(UNKNOWN, f"z3 cannot encode ({exc})")
    if model is not None:
        model = _unsubstitute(model, power)
    return Outcome(status, how, model)


def _unsubstitute(model: dict[str, str], power: int) -> dict[str, str]:
    out = {k: v_ for k, v_ in model.items() if k not in ("u", "v")}
    for key, name, shift in (("u", "r", 0), ("v", "eps_high", 1)):
        if key in model:
            val = float(sp.N(sp.sympify(model[key]) ** power)) - shift
            out[name] = f"{val:.12g}"
    return out


# --- claims -------------------------------------------------------------------------------
def is_zero(d: sp.Expr) -> bool:
    d = sp.sympify(d)
    if d == 0:
        return True
    quick = sp.expand(sp.powsimp(sp.expand_power_base(d, force=True), force=True))
    return quick == 0 or sp.simplify(d) == 0


@dataclass(frozen=True)
class Identity:
    """lhs == rhs wherever ``where`` holds (and the domain)."""

    label: str
    lhs: sp.Expr
    rhs: sp.Expr
    where: sp.Boolean = sp.true

    def prepared(self, ctx: Context, inst: dict) -> tuple[sp.Expr, sp.Expr, sp.Boolean]:
        return tuple(ctx.prepare(x).subs(inst) for x in (self.lhs, self.rhs, self.where))

    def decide(self, ctx: Context, inst: dict) -> Outcome | None:
        lhs, rhs, where = self.prepared(ctx, inst)
        if is_zero(lhs - rhs):
            return Outcome(PROVED, "sympy simplify")
        cex = search_identity(lhs, rhs, where)
        if cex is not None:
            return Outcome(DISPROVED, "exact evaluation at a sample point", {"claim": self.label, **cex})
        if set(ctx.family) & (lhs - rhs).free_symbols:
            return None
        return by_z3(sp.Eq(lhs, rhs), where, ctx, int(inst.get(S.m, 1)))


@dataclass(frozen=True)
class Inequality:
    """``statement`` (a SymPy condition) wherever ``where`` holds (and the domain)."""

    label: str
    statement: sp.Boolean
    where: sp.Boolean = sp.true

    def decide(self, ctx: Context, inst: dict) -> Outcome | None:
        stmt, where = (ctx.prepare(x).subs(inst) for x in (self.statement, self.where))
        if stmt is sp.true:
            return Outcome(PROVED, "sympy assumptions (holds for all signs)")
        cex = search_statement(stmt, where)
        if cex is not None:
            return Outcome(DISPROVED, "exact evaluation at a sample point", {"claim": self.label, **cex})
        if set(ctx.family) & stmt.free_symbols:
            return None
        return by_z3(stmt, where, ctx, int(inst.get(S.m, 1)))


@dataclass(frozen=True)
class Limit:
    """limit of ``expr`` as ``var`` -> ``point``⁺ equals ``expected``."""

    label: str
    expr: sp.Expr
    var: sp.Symbol
    point: sp.Expr
    expected: sp.Expr

    def decide(self, ctx: Context, inst: dict) -> Outcome | None:
        expr = ctx.prepare(self.expr).subs(inst)
        try:
            value = sp.limit(expr, self.var, self.point, "+")
        except (NotImplementedError, ValueError):
            value = None
        if value is None or value.has(sp.Limit):
            return None if set(ctx.family) & expr.free_symbols else Outcome(UNKNOWN, "sympy limit failed")
        value = sp.refine(value, sp.Q.lt(S.eps_low, 1))  # the one domain bound SymPy's assumptions miss
        if is_zero(value - self.expected) if value.is_finite else False:
            return Outcome(PROVED, "sympy limit")
        if value.free_symbols and not value.is_infinite:
            cex = search_identity(value, self.expected, sp.true)
            if cex is None:
                return None if set(ctx.family) & expr.free_symbols else Outcome(UNKNOWN, "sympy limit")
            return Outcome(DISPROVED, "sympy limit", {"claim": self.label, "limit": str(value), **cex})
        return Outcome(DISPROVED, "sympy limit", {"claim": self.label, "limit": str(value)})
