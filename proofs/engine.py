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


# --- limits -------------------------------------------------------------------------------
#: what SymPy's limit is asked about once the branches are resolved: elementary exp/log/power terms
_ELEMENTARY = (sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log)
#: errors SymPy's limit and assumptions raise on expressions they cannot handle
_SYMPY_ERRORS = (TypeError, NotImplementedError, ValueError, ZeroDivisionError, AttributeError, RecursionError)
#: how many hyper-parameter signs a limit may be split on (each split: three cases)
_MAX_SPLITS = 2
#: where a limit found at a sample point is corroborated by direct evaluation
_NEAR_ZERO = sp.Rational(1, 10**30)


class Open(Exception):
    """The symbolic path cannot settle a branch or a sign near the limit point (the reason).

    ``split``: the hyper-parameter expression (free of var) whose unknown sign left it open, when
    there is one; the claim can then be decided case by case on that sign.
    """

    def __init__(self, reason: str, split: sp.Expr | None = None):
        super().__init__(reason)
        self.split = split if split is not None and split.is_finite else None


class Near:
    """Limits as ``var`` -> ``point``⁺ that do not trust SymPy with non-smooth functions.

    ``sympy.limit`` mishandles Piecewise (it drops conditions that carry free symbols), Min/Max
    (no series) and powers with an exponent of unknown sign. So every Piecewise, Min, Max and Abs
    containing ``var`` is first replaced by the branch it takes for all ``var`` close enough to
    ``point`` — decided from the sign of the limit of each condition's two sides, the sign shown by
    SymPy's assumptions or by z3 under ``assumptions`` (the domains) — and only the resulting
    exp/log/power expression goes to ``sympy.limit``. A branch or sign that depends on the
    hyper-parameters raises :class:`Open`; nothing is guessed.
    """

    def __init__(self, var: sp.Symbol, point: sp.Expr, assumptions: sp.Boolean = sp.true):
        self.var, self.point, self.assumptions = var, sp.sympify(point), assumptions
        self.rewrote: list[str] = []  # the functions replaced by their branch near the point

    def limit(self, expr: sp.Expr) -> sp.Expr:
        e = sp.powsimp(self.resolve(sp.sympify(expr)))  # r**k/r -> r**(k - 1): the exponent checked
        signed: dict[sp.Expr, sp.Expr] = {}  # exponent -> ±k, k a positive dummy (or 0)
        back: dict[sp.Dummy, sp.Expr] = {}  # k -> ±exponent, to restate the value
        for sub in sp.preorder_traversal(e):
            if sub.args and self.var in sub.free_symbols and not isinstance(sub, _ELEMENTARY):
                raise Open(f"{type(sub).__name__} near {self.var} -> {self.point}+ is not supported")
            if isinstance(sub, sp.Pow) and self.var in sub.base.free_symbols and sub.exp.free_symbols \
                    and self.var not in sub.exp.free_symbols and sub.exp not in signed \
                    and not (sub.exp.is_positive or sub.exp.is_negative or sub.exp.is_zero):  # SymPy knows
                sign = self.sign(sub.exp)
                if sign is None:
                    raise Open(f"the sign of the exponent {sub.exp} is not determined by the domains", sub.exp)
                # SymPy's limit needs the sign in the exponent's assumptions: a signed dummy for it
                k = sp.Dummy("k", positive=True)
                signed[sub.exp], back[k] = sign * k, sign * sub.exp
        e = e.xreplace({x: x.base ** signed[x.exp] for x in sp.preorder_traversal(e)
                        if isinstance(x, sp.Pow) and x.exp in signed})
        value = sp.limit(e, self.var, self.point, "+")
        value = value.xreplace(back)
        if value.has(sp.Limit, sp.AccumBounds, sp.nan, sp.zoo) or not (value.is_finite or value.is_infinite
                                                                         or value.free_symbols):
            raise Open(f"sympy limit gave {value}")
        return value

    def sign(self, value: sp.Expr) -> int | None:
        """1, -1 or 0 when the sign of ``value`` follows from the domains (for every var > point
        when ``value`` contains var), else None."""
        value = sp.sympify(value)
        if value is sp.oo or value.is_positive:
            return 1
        if value is sp.S.NegativeInfinity or value.is_negative:
            return -1
        if value.is_zero:
            return 0
        if not value.free_symbols or not value.is_finite:
            return None
        # with var in value: the sign for every var > point (stronger than near it, so sound)
        assume = sp.And(self.assumptions, self.var > self.point) if self.var in value.free_symbols else self.assumptions
        free = sorted(value.free_symbols | assume.free_symbols, key=str)
        for sign, claim in ((1, value > 0), (-1, value < 0), (0, sp.Eq(value, 0))):
            try:
                if z3bridge.decide(claim, assume, free).status == PROVED:
                    return sign
            except z3bridge.Unsupported:
                return None
        return None

    def eventually(self, cond: sp.Boolean) -> bool:
        """Whether ``cond`` holds for every var in some (point, point + δ); :class:`Open` if unsettled."""
        cond = sp.sympify(cond)
        if cond in (sp.true, sp.false):
            return cond is sp.true
        if isinstance(cond, (sp.And, sp.Or)):
            values, unsettled = [], None
            for arg in cond.args:
                try:
                    values.append(self.eventually(arg))
                except Open as exc:
                    unsettled = exc
            absorbing = isinstance(cond, sp.Or)  # True settles an Or, False an And
            if absorbing in values:
                return absorbing
            if unsettled is not None:
                raise unsettled
            return not absorbing
        if isinstance(cond, sp.Not):
            return not self.eventually(cond.args[0])
        if isinstance(cond, (sp.Eq, sp.Ne)):
            d = cond.lhs - cond.rhs
            if is_zero(d):
                return isinstance(cond, sp.Eq)
            lim = self.limit(d) if self.var in d.free_symbols else d
            s = self.sign(lim)
            if s in (1, -1):
                return isinstance(cond, sp.Ne)
            raise Open(f"whether {cond} holds near {self.var} -> {self.point}+ is not settled",
                       lim if s is None else None)
        if isinstance(cond, sp.core.relational._Inequality):
            d = cond.gts - cond.lts  # cond is d > 0 (strict) or d >= 0
            strict = isinstance(cond, (sp.StrictGreaterThan, sp.StrictLessThan))
            lim = self.limit(d) if self.var in d.free_symbols else d
            s = self.sign(lim)
            if s == 0 and self.var in d.free_symbols:  # the sides meet at the point: d's own sign
                s = self.sign(d)
                if s == 0:
                    return not strict
            elif s is None:
                raise Open(f"whether {cond} holds near {self.var} -> {self.point}+ depends on the hyper-parameters",
                           lim)
            if s in (1, -1):
                return s == 1
            raise Open(f"whether {cond} holds near {self.var} -> {self.point}+ is not settled")
        raise Open(f"condition {cond} is not supported")

    def resolve(self, e: sp.Basic) -> sp.Basic:
        """``e`` with every Piecewise, Min, Max and Abs in var replaced by its branch near the point."""
        if self.var not in e.free_symbols:
            return e
        if isinstance(e, sp.Piecewise):
            for piece, cond in e.args:  # ordered: a piece applies where the ones before it do not
                if self.eventually(cond):
                    self.rewrote.append("Piecewise")
                    return self.resolve(piece)
            raise Open(f"no branch of {e} holds near {self.var} -> {self.point}+")
        if isinstance(e, (sp.Min, sp.Max)):
            args = [self.resolve(a) for a in e.args]
            below = sp.Le if isinstance(e, sp.Min) else sp.Ge
            split = None
            for a in args:
                try:
                    if all(self.eventually(below(a, b)) for b in args if b is not a):
                        self.rewrote.append(type(e).__name__)
                        return a
                except Open as exc:
                    split = split if split is not None else exc.split
            raise Open(f"which argument of {e} is taken near {self.var} -> {self.point}+ is not settled", split)
        if isinstance(e, sp.Abs):
            a = self.resolve(e.args[0])
            self.rewrote.append("Abs")
            if self.eventually(a >= 0):
                return a
            if self.eventually(a <= 0):
                return -a
            raise Open(f"the sign of {a} near {self.var} -> {self.point}+ is not settled")
        return e.func(*(self.resolve(a) for a in e.args)) if e.args else e


def _feasible(assume: sp.Boolean) -> bool:
    """False only when z3 shows ``assume`` unsatisfiable."""
    try:
        return z3bridge.decide(sp.false, assume, sorted(assume.free_symbols, key=str)).status != PROVED
    except z3bridge.Unsupported:
        return True


def _model(assume: sp.Boolean, symbols: set) -> dict | None:
    """A rational point of ``symbols`` (and assume's) where ``assume`` holds (z3's model), or None."""
    free = sorted(assume.free_symbols | set(symbols), key=str)
    try:
        verdict = z3bridge.decide(sp.false, assume, free)
    except z3bridge.Unsupported:
        return None
    if verdict.status != DISPROVED or not verdict.model:
        return None
    by_name = {s_.name: s_ for s_ in free}
    try:
        return {by_name[k]: sp.Rational(v_) for k, v_ in verdict.model.items()}
    except (TypeError, ValueError):
        return None


def _assumptions(ctx: Context, expr: sp.Basic) -> sp.Boolean:
    """The domains, with p_old <= 1 (a probability) where p_old occurs."""
    return sp.And(ctx.domain, S.p_old <= 1) if S.p_old in expr.free_symbols else ctx.domain


@dataclass(frozen=True)
class Limit:
    """limit of ``expr`` as ``var`` -> ``point``⁺ equals ``expected``.

    Decided by :class:`Near` (branches resolved near the point, then ``sympy.limit``) for symbolic
    hyper-parameters; where a branch or an exponent's sign depends on them, by cases on that sign
    (proved when every case's limit is ``expected``). Otherwise the claim can still be disproved at
    a sample point inside the domains (the limit taken there with every hyper-parameter concrete,
    and corroborated by evaluating the expression at var = 10⁻³⁰), and is unknown with the reason.
    SymPy errors are "unknown", never a crash.
    """

    label: str
    expr: sp.Expr
    var: sp.Symbol
    point: sp.Expr
    expected: sp.Expr

    def decide(self, ctx: Context, inst: dict) -> Outcome | None:
        expr = ctx.prepare(self.expr).subs(inst)
        undecided = None if set(ctx.family) & expr.free_symbols else UNKNOWN  # n, m: per instance
        extra: list[dict] = []
        try:
            cases = self._by_cases(expr, _assumptions(ctx, expr), (), _MAX_SPLITS)
        except Open as exc:
            reason = str(exc)
        except _SYMPY_ERRORS as exc:
            reason = f"sympy raised {type(exc).__name__}: {exc}"
        else:
            if len(cases) == 1:
                [(_, _, value, rewrote)] = cases
                return self._judge(value, expr, "sympy limit" + (
                    f" ({', '.join(dict.fromkeys(rewrote))} resolved near {self.var} -> {self.point}+)"
                    if rewrote else ""), undecided)
            values = [(conds, sp.refine(v, sp.Q.lt(S.eps_low, 1))) for conds, _, v, _ in cases]
            shown = "; ".join(f"{' & '.join(map(str, c))}: {v}" for c, v in values)
            holds = [v.is_finite and is_zero(v - self.expected) for _, v in values]
            if all(holds):
                return Outcome(PROVED, f"sympy limit by cases ({shown})")
            reason = f"by cases, {shown}"
            # a point of each case whose limit differs (z3's model of the case), tried first
            extra = [_model(case[1], expr.free_symbols - {self.var}) for case, ok in zip(cases, holds) if not ok]
        cex = self._at_samples(expr, ctx, [p for p in extra if p])
        if cex is not None:
            return Outcome(DISPROVED, f"sympy limit at a point ({reason})", cex)
        return undecided and Outcome(UNKNOWN, f"sympy limit: {reason}; no sample point disproves it")

    def _by_cases(self, expr: sp.Expr, assume: sp.Boolean, conds: tuple, splits: int) -> list[tuple]:
        """(case conditions, assumptions, limit, rewritten functions) per case on the open signs.

        The cases x > 0, x < 0, x = 0 of an unsettled sign are exhaustive; infeasible ones (z3:
        unsat with the domains) are dropped. Raises :class:`Open` past ``splits`` levels.
        """
        near = Near(self.var, self.point, assume)
        try:
            return [(conds, assume, near.limit(expr), near.rewrote)]
        except Open as exc:
            if exc.split is None or splits == 0:
                raise
            x = exc.split
        out = []
        for case in (x > 0, x < 0, sp.Eq(x, 0)):
            inside = sp.And(assume, case)
            if inside is sp.false or not _feasible(inside):
                continue
            out += self._by_cases(expr, inside, (*conds, case), splits - 1)
        return out

    def _judge(self, value: sp.Expr, expr: sp.Expr, how: str, undecided: str | None) -> Outcome | None:
        value = sp.refine(value, sp.Q.lt(S.eps_low, 1))  # the one domain bound SymPy's assumptions miss
        if is_zero(value - self.expected) if value.is_finite else False:
            return Outcome(PROVED, how)
        if value.free_symbols and not value.is_infinite:
            cex = search_identity(value, self.expected, sp.true)
            if cex is None:
                return undecided and Outcome(UNKNOWN, how)
            return Outcome(DISPROVED, how, {"claim": self.label, "limit": str(value), **cex})
        return Outcome(DISPROVED, how, {"claim": self.label, "limit": str(value)})

    def _at_samples(self, expr: sp.Expr, ctx: Context, first: list[dict] = ()) -> dict | None:
        """A point inside the domains (``first``, then the samples) where the limit (all concrete)
        differs from expected."""
        free = sorted(expr.free_symbols - {self.var}, key=str)
        # the domain conditions on the claim's symbols (the others do not constrain it)
        domain = sp.And(*(c for c in sp.And.make_args(_assumptions(ctx, expr)) if c.free_symbols <= set(free)))
        for combo in [*first, *_combos(free)]:
            combo = {s_: v_ for s_, v_ in combo.items() if s_ in free}
            if set(combo) != set(free) or domain.subs(combo) is not sp.true:
                continue
            concrete = expr.subs(combo)
            try:
                value = Near(self.var, self.point).limit(concrete)
                direct = sp.N(concrete.subs(self.var, self.point + _NEAR_ZERO), 30)
            except (Open, *_SYMPY_ERRORS):
                continue
            if value.free_symbols or not direct.is_number:
                continue
            if value.is_finite:
                gap = abs(sp.N(value - self.expected, 30))
                if not (gap > sp.Float("1e-20", 30) and abs(direct - value) < gap / 2):
                    continue
            elif not abs(direct - self.expected) > 1:
                continue
            return {"claim": self.label, "limit": str(value), **_show(combo)}
        return None
