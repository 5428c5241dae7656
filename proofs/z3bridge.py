"""SymPy -> z3: real arithmetic with exp, log and radicals, and a "for all" check by refutation.

Translated directly: +, ·, integer powers, rationals, Min/Max/Abs/sign/Piecewise, comparisons and
the Boolean connectives. The transcendental and radical parts are *abstracted* by fresh z3 reals
that satisfy only facts true of the real functions (an over-approximation):

- ``exp(g)``: a variable E with E > 0, E >= 1 + g and E·(1 − g) <= 1 (the tangent at 0 of exp(g)
  and of exp(−g) = 1/E); together they give E > 1, = 1, < 1 exactly when g > 0, = 0, < 0.
  exp(g) and exp(−g) (and exp(k·g) for rational k) share one variable: exp(−g) = 1/E, exp(2g) =
  E². Two exp's are monotone in their arguments. A sigmoid 1/(1 + exp(−x)) becomes E/(1 + E), so
  0 < σ < 1 and its sign relations hold without a separate substitution.
- ``log(b)``: a variable L with exp(L) = b, i.e. the same two tangent facts with E := b; b > 0 is a
  definedness condition (below).
- cosh, sinh, tanh, ...: rewritten with exp.
- ``b**(p/q)`` (rational, non-integer): t > 0 with t^q = b, then t^p; b > 0 is a definedness
  condition. ``b**y`` with a symbolic or irrational y: exp(y·log b).

Soundness. "proved" means the negated claim is unsat even with the abstracted functions free to be
anything satisfying those true facts, so it is unsat for the real functions: a proof is sound. A
definedness condition (a log's or radical's argument > 0) must follow from the assumptions, else
the claim is :class:`Unsupported`. A z3 model is only reported as a counterexample after SymPy
re-evaluates the *original* claim and assumptions at the model's point with the real functions and
finds the claim false; otherwise the model is spurious and tangent cuts at its arguments are added
(exp(a)·(1 + g − a) <= exp(g) for all g, with exp(a) rounded down to a rational) and z3 asked again,
:data:`REFINEMENTS` times at most, after which :func:`refute` raises :class:`Undecided` (an
:class:`Unsupported`, so the engine records "unknown" with the reason).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import mpmath
import sympy as sp
import z3
from sympy.functions.elementary.hyperbolic import HyperbolicFunction

#: per-query time limit; running out is status "unknown", which is a failure
TIMEOUT_MS = 20000
#: tangent-cut refinement rounds after a spurious model, before giving up as undecided
REFINEMENTS = 8


class Unsupported(ValueError):
    """The expression is outside what the translation handles."""


class Undecided(Unsupported):
    """Translated, but z3's models stayed spurious for the abstracted functions."""


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


@dataclass
class _Atom:
    """value = exp(arg): for exp(g) ``value`` is fresh; for log(b) ``arg`` is fresh, value = b."""

    value: z3.ArithRef
    arg: z3.ArithRef
    label: str
    needs: int | None = None  # index of the definedness condition it presupposes (logs)


@dataclass
class Translation:
    """One translation: the variables, and what the abstraction adds (side facts, definedness)."""

    env: Mapping[sp.Symbol, z3.ArithRef]
    #: (fact, k): a fact true of the real functions; k is None, or the index in ``defined`` of the
    #: condition it presupposes (log(b) = L gives b = exp(L) > 0, which must not prove b > 0)
    side: list = field(default_factory=list)
    defined: list = field(default_factory=list)  # (z3 condition, text): must follow from the assumptions
    atoms: list[_Atom] = field(default_factory=list)
    _exp: dict = field(default_factory=dict)  # canonical argument -> _Atom
    _log: dict = field(default_factory=dict)  # argument -> z3 variable L
    _root: dict = field(default_factory=dict)  # (base, q) -> z3 variable t

    def __call__(self, expr: sp.Basic):
        return self.to_z3(expr)

    def to_z3(self, e: sp.Basic):
        if e.is_Symbol:
            if e not in self.env:
                raise Unsupported(f"free symbol {e}")
            return self.env[e]
        if e is sp.true or e is sp.false:
            return z3.BoolVal(bool(e))
        if e.is_Rational:
            return _num(e)
        if e is sp.E:
            return self.exp(sp.S.One)
        if e.is_Add:
            return _fold(lambda a, b: a + b, [self.to_z3(a) for a in e.args])
        if e.is_Mul:
            return _fold(lambda a, b: a * b, [self.to_z3(a) for a in e.args])
        if e.is_Pow:
            return self.power(e.base, e.exp)
        if isinstance(e, sp.exp):
            return self.exp(e.args[0])
        if isinstance(e, sp.log):
            if len(e.args) != 1:
                raise Unsupported(f"log with a base: {e}")
            return self.log(e.args[0])
        if isinstance(e, HyperbolicFunction):  # SymPy's simplify writes σ(x)(1 − σ(x)) with cosh
            return self.to_z3(e.rewrite(sp.exp))
        return self._compound(e)

    # --- the abstracted functions -----------------------------------------------------------
    def power(self, base: sp.Expr, exp: sp.Expr):
        if exp.is_Integer:
            return _pow(self.to_z3(base), int(exp))
        if exp.is_Rational:
            return _pow(self.root(base, int(exp.q)), int(exp.p))
        if base is sp.E:
            return self.exp(exp)
        if exp.is_real is False or exp.has(sp.I):
            raise Unsupported(f"complex power {base}**{exp}")
        return self.exp(sp.expand(exp * sp.log(base)))

    def root(self, base: sp.Expr, q: int):
        key = (base, q)
        if key not in self._root:
            b = self.to_z3(base)
            t = z3.Real(f"root{len(self._root)}")
            self._root[key] = t
            k = len(self.defined)
            self.defined.append((b > 0, f"base of {base}**(1/{q}) > 0"))
            self.side += [(t > 0, k), (_pow(t, q) == b, k)]
        return self._root[key]

    def log(self, arg: sp.Expr):
        if arg not in self._log:
            b = self.to_z3(arg)
            L = z3.Real(f"log{len(self._log)}")
            self._log[arg] = L
            self.defined.append((b > 0, f"argument of log({arg}) > 0"))
            self._atom(b, L, f"log({arg})", needs=len(self.defined) - 1)
        return self._log[arg]

    def exp(self, arg: sp.Expr):
        """exp(arg) = E^k for the canonical g = arg/k (exp(g), exp(−g), exp(2g) share E)."""
        g = sp.expand(arg)
        if g == 0:
            return z3.RealVal(1)
        coeff, prim = g.as_content_primitive() if g.is_Add else g.as_coeff_Mul()
        if prim.could_extract_minus_sign():
            coeff, prim = -coeff, -prim
        if not coeff.is_Rational:  # an irrational numeric factor: keep it inside the argument
            coeff, prim = sp.S.One, g
        prim = sp.expand(prim / coeff.q) if coeff.q != 1 else prim
        if prim not in self._exp:
            E = z3.Real(f"exp{len(self._exp)}")
            self._exp[prim] = self._atom(E, self.to_z3(prim), f"exp({prim})")
        return _pow(self._exp[prim].value, int(coeff.p))

    def _atom(self, value, arg, label: str, needs: int | None = None) -> _Atom:
        atom = _Atom(value, arg, label, needs)
        # exp(g) > 0; exp(g) >= 1 + g; exp(-g) >= 1 - g, i.e. exp(g)·(1 - g) <= 1 (all g)
        self.side += [(f, needs) for f in (value > 0, value >= 1 + arg, value * (1 - arg) <= 1)]
        for other in self.atoms:  # exp is strictly increasing (presupposes both atoms)
            both = max((k for k in (needs, other.needs) if k is not None), default=None)
            self.side += [(z3.Implies(other.arg <= arg, other.value <= value), both),
                          (z3.Implies(other.arg < arg, other.value < value), both)]
        self.atoms.append(atom)
        return atom

    # --- the rest ---------------------------------------------------------------------------
    def _compound(self, e: sp.Basic):
        rec = self.to_z3
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
        if isinstance(e, sp.sign):
            x = rec(e.args[0])
            return z3.If(x > 0, z3.RealVal(1), z3.If(x < 0, z3.RealVal(-1), z3.RealVal(0)))
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


def to_z3(expr: sp.Basic, env: Mapping[sp.Symbol, z3.ArithRef]):
    """Translate a *polynomial* ``expr`` with the variables in ``env`` (symbol -> z3 Real).

    An expression that needs an abstracted function (exp, log, a radical) raises
    :class:`Unsupported`: its side facts would be lost here; use :func:`refute`.
    """
    t = Translation(env)
    out = t(sp.sympify(expr))
    if t.side or t.defined:
        raise Unsupported(f"{expr} needs exp/log/radical side facts: use refute()")
    return out


# --- models -------------------------------------------------------------------------------
def _value(v) -> str:
    if z3.is_rational_value(v):
        frac = Fraction(v.numerator_as_long(), v.denominator_as_long())
        return str(frac) if frac.denominator < 10**6 else f"{float(frac):.12g}"
    if z3.is_algebraic_value(v):
        return v.approx(12).as_decimal(12).rstrip("?")
    return str(v)


def _exact(v) -> sp.Rational:
    """A z3 model value as a SymPy rational (algebraic or huge ones rounded to about 30 digits: the
    point is re-checked, so rounding can only lose a counterexample, never make one up)."""
    if z3.is_rational_value(v):
        frac = Fraction(v.numerator_as_long(), v.denominator_as_long())
    elif z3.is_algebraic_value(v):
        frac = v.approx(30).as_fraction()
    else:
        raise Undecided(f"model value {v} is not a number")
    if max(abs(frac.numerator), frac.denominator) > 10**40:  # keep exact powers of it small
        frac = frac.limit_denominator(10**30)
    return sp.Rational(frac.numerator, frac.denominator)


def _decided(cond: sp.Boolean, point: dict) -> bool | None:
    """The truth of ``cond`` at ``point`` with the real functions, or None when SymPy cannot tell."""
    try:
        out = sp.sympify(cond).subs(point)
        if out is sp.true or out is sp.false:
            return bool(out)
        if isinstance(out, sp.Rel):  # e.g. Eq(exp(2/5), 3/2) stays unevaluated: compare with 50 digits
            lhs, rhs = (sp.N(x, 50) for x in (out.lhs, out.rhs))
            if lhs.is_number and rhs.is_number and abs(lhs - rhs) > sp.Float("1e-40", 50):
                return bool(type(out)(lhs, rhs))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):  # e.g. a 10^4-digit exact power
        return None
    return None


def _below(x: mpmath.mpf) -> z3.ArithRef:
    """A rational strictly below the positive real ``x`` (relative slack 1e-20 >> the rounding)."""
    with mpmath.workdps(50):
        digits = mpmath.nstr(x * (1 - mpmath.mpf("1e-20")), 30, min_fixed=-mpmath.inf, max_fixed=mpmath.inf)
    return z3.RealVal(str(Fraction(digits)))


def _cuts(atom: _Atom, model: z3.ModelRef) -> list:
    """Tangent lines of exp at the model's argument a: exp(g) >= e^a (1+g-a), exp(-g) >= e^-a (1-g+a)."""
    a_val = model.eval(atom.arg, model_completion=True)
    try:
        a = Fraction(str(_exact(a_val))).limit_denominator(10**6)
    except Undecided:
        return []
    if abs(a) > 200:
        return []
    A = z3.RealVal(str(a))
    with mpmath.workdps(40):
        lo_pos, lo_neg = _below(mpmath.exp(mpmath.mpf(a.numerator) / a.denominator)), _below(
            mpmath.exp(-mpmath.mpf(a.numerator) / a.denominator))
    return [atom.value >= lo_pos * (1 + atom.arg - A), atom.value * lo_neg * (1 - atom.arg + A) <= 1]


# --- the check ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    status: str  # "proved" | "disproved" | "unknown"
    model: dict[str, str] | None = None
    reason: str = ""


def decide(statement: sp.Boolean, assumptions: sp.Boolean, variables: list[sp.Symbol]) -> Verdict:
    """``assumptions -> statement`` for all real ``variables``, with a reason when undecided.

    Raises :class:`Unsupported` when the claim cannot be translated (or a log's or radical's
    argument is not shown positive under the assumptions).
    """
    env = {v: z3.Real(v.name) for v in variables}
    t = Translation(env)
    # SymPy folds `x > 0` to True for a positive symbol, so its assumption must be restated here
    premises = [env[v] > 0 for v in variables if v.is_positive]
    premises.append(t(sp.sympify(assumptions)))
    negated = z3.Not(t(sp.sympify(statement)))
    solver = z3.Solver()
    solver.set("timeout", TIMEOUT_MS)
    solver.add(*premises)
    # each log's / radical's argument > 0, from the assumptions and the facts of those before it
    # (a nested one is created, and checked, before the one around it)
    for k, (cond, text) in enumerate(t.defined):
        solver.push()
        solver.add(*[f for f, needs in t.side if needs is None or needs < k], z3.Not(cond))
        verdict = solver.check()
        solver.pop()
        if verdict != z3.unsat:
            raise Unsupported(f"{text} does not follow from the assumptions")
    solver.add(*[f for f, _ in t.side], negated)
    for round_ in itertools.count():
        verdict = solver.check()
        if verdict == z3.unsat:
            return Verdict("proved")
        if verdict != z3.sat:
            return Verdict("unknown", reason=f"z3: {solver.reason_unknown()}")
        model = solver.model()
        shown = {v.name: _value(model.eval(env[v], model_completion=True)) for v in variables}
        if not t.atoms and not t._root:
            return Verdict("disproved", shown)  # exact arithmetic: z3's model is a counterexample
        point = {v: _exact(model.eval(env[v], model_completion=True)) for v in variables}
        inside = all(point[v] > 0 for v in variables if v.is_positive)  # rounding kept the signs
        if inside and _decided(assumptions, point) is True and _decided(statement, point) is False:
            return Verdict("disproved", {v.name: str(point[v]) if point[v].q < 10**6 else
                                         f"{float(point[v]):.12g}" for v in variables})
        cuts = [c for atom in t.atoms for c in _cuts(atom, model)]
        if round_ >= REFINEMENTS or not cuts:
            return Verdict("unknown", reason=(
                f"z3's models are not counterexamples for the real functions after {round_} "
                f"refinements (last: {shown})"))
        solver.add(*cuts)
    raise AssertionError("unreachable")


def refute(statement: sp.Boolean, assumptions: sp.Boolean, variables: list[sp.Symbol]
           ) -> tuple[str, dict[str, str] | None]:
    """Prove ``assumptions -> statement`` for all real ``variables`` by asking z3 for a refutation.

    Returns ("proved", None) on unsat, ("disproved", model) on a checked counterexample, ("unknown",
    None) when z3 gives up (time limit). Raises :class:`Unsupported` when the claim cannot be
    translated and :class:`Undecided` (a subclass) when the exp/log abstraction leaves it open, each
    with the reason in its message.
    """
    verdict = decide(statement, assumptions, variables)
    if verdict.status == "unknown" and verdict.reason.startswith("z3's models"):
        raise Undecided(verdict.reason)
    return verdict.status, verdict.model
