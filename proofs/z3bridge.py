"""SymPy -> z3: polynomial (and piecewise) real arithmetic, and a "for all" check by refutation.

Only +, ·, integer powers, rationals, Min/Max/Abs/Piecewise and comparisons are translated; anything
else (a fractional power, log) raises :class:`Unsupported`, and the caller must first substitute
(DGPO's HP: r = u^m, 1 + eps_high = v^m) or give up with status unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import sympy as sp
import z3

#: per-query time limit; running out is status "unknown", which is a failure
TIMEOUT_MS = 20000


class Unsupported(ValueError):
    """The expression is outside what the translation handles."""


def _num(x: sp.Rational) -> z3.ArithRef:
    return z3.RealVal(str(Fraction(int(x.p), int(x.q))))


def _pow(base: z3.ArithRef, k: int) -> z3.ArithRef:
    out = z3.RealVal(1)
    for _ in range(abs(k)):
        out = out * base
    return out if k >= 0 else 1 / out


def _fold(op, items):
    out = items[0]
    for item in items[1:]:
        out = op(out, item)
    return out


def to_z3(expr: sp.Basic, env: Mapping[sp.Symbol, z3.ArithRef]):
    """Translate ``expr`` with the variables in ``env`` (symbol -> z3 Real)."""
    e = expr
    if e.is_Symbol:
        if e not in env:
            raise Unsupported(f"free symbol {e}")
        return env[e]
    if e is sp.true or e is sp.false:
        return z3.BoolVal(bool(e))
    if e.is_Rational:
        return _num(e)
    if e.is_Add:
        return _fold(lambda a, b: a + b, [to_z3(a, env) for a in e.args])
    if e.is_Mul:
        return _fold(lambda a, b: a * b, [to_z3(a, env) for a in e.args])
    if e.is_Pow:
        if not e.exp.is_Integer:
            raise Unsupported(f"non-integer power {e}")
        return _pow(to_z3(e.base, env), int(e.exp))
    return _compound(e, env)


def _compound(e: sp.Basic, env):
    rec = lambda a: to_z3(a, env)  # noqa: E731
    if isinstance(e, sp.Piecewise):
        out = rec(e.args[-1].expr)
        for piece in reversed(e.args[:-1]):
            out = z3.If(rec(piece.cond), rec(piece.expr), out)
        return out
    if isinstance(e, (sp.Min, sp.Max)):
        pick = (lambda a, b: z3.If(a <= b, a, b)) if isinstance(e, sp.Min) else (
            lambda a, b: z3.If(a >= b, a, b))
        return _fold(pick, [rec(a) for a in e.args])
    if isinstance(e, sp.Abs):
        x = rec(e.args[0])
        return z3.If(x >= 0, x, -x)
    relations = {sp.StrictLessThan: lambda a, b: a < b, sp.LessThan: lambda a, b: a <= b,
                 sp.StrictGreaterThan: lambda a, b: a > b, sp.GreaterThan: lambda a, b: a >= b,
                 sp.Equality: lambda a, b: a == b, sp.Unequality: lambda a, b: a != b}
    if type(e) in relations:
        return relations[type(e)](rec(e.lhs), rec(e.rhs))
    if isinstance(e, sp.And):
        return z3.And(*[rec(a) for a in e.args])
    if isinstance(e, sp.Or):
        return z3.Or(*[rec(a) for a in e.args])
    if isinstance(e, sp.Not):
        return z3.Not(rec(e.args[0]))
    raise Unsupported(f"cannot translate {type(e).__name__}: {e}")


def _value(v) -> str:
    if z3.is_rational_value(v):
        frac = Fraction(v.numerator_as_long(), v.denominator_as_long())
        return str(frac) if frac.denominator < 10**6 else f"{float(frac):.12g}"
    if z3.is_algebraic_value(v):
        return v.approx(12).as_decimal(12).rstrip("?")
    return str(v)


def refute(statement: sp.Boolean, assumptions: sp.Boolean, variables: list[sp.Symbol]
           ) -> tuple[str, dict[str, str] | None]:
    """Prove ``assumptions -> statement`` for all real ``variables`` by asking z3 for a refutation.

    Returns ("proved", None) on unsat, ("disproved", model) on sat, ("unknown", None) otherwise.
    """
    env = {v: z3.Real(v.name) for v in variables}
    solver = z3.Solver()
    solver.set("timeout", TIMEOUT_MS)
    # SymPy folds `x > 0` to True for a positive symbol, so its assumption must be restated here
    solver.add(*[env[v] > 0 for v in variables if v.is_positive])
    solver.add(to_z3(assumptions, env))
    solver.add(z3.Not(to_z3(statement, env)))
    verdict = solver.check()
    if verdict == z3.unsat:
        return "proved", None
    if verdict == z3.sat:
        model = solver.model()
        return "disproved", {v.name: _value(model.eval(env[v], model_completion=True)) for v in variables}
    return "unknown", None
