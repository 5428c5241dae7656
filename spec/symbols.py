"""The symbols of the spec (names exactly as in shared/DESIGN.md) and the stop-gradient ``sg``.

SymPy assumptions carry what they can: ``p``, ``p_old``, ``r``, the epsilons, ``beta1``, ``beta2``
and ``dual_clip`` are positive, ``n``, ``m`` positive integers, ``A`` real. The finer domains
(``p <= 1``, ``eps_low < 1``, ``dual_clip > 1``) live in :mod:`spec.hparams` as explicit conditions.
"""

from __future__ import annotations

import sympy as sp

p = sp.Symbol("p", positive=True)
p_old = sp.Symbol("p_old", positive=True)
r = sp.Symbol("r", positive=True)
A = sp.Symbol("A", real=True)
eps_low = sp.Symbol("eps_low", positive=True)
eps_high = sp.Symbol("eps_high", positive=True)
n = sp.Symbol("n", integer=True, positive=True)
m = sp.Symbol("m", integer=True, positive=True)
beta1 = sp.Symbol("beta1", positive=True)
beta2 = sp.Symbol("beta2", positive=True)
dual_clip = sp.Symbol("dual_clip", positive=True)

#: the ratio written in the variables an implementation differentiates: r = p / p_old
ratio = p / p_old

#: name -> symbol, for every symbol of the spec
SYMBOLS: dict[str, sp.Symbol] = {
    s.name: s for s in (p, p_old, r, A, eps_low, eps_high, n, m, beta1, beta2, dual_clip)
}


class sg(sp.Function):
    """Stop-gradient: ``sg(x)`` has the value ``x`` and derivative 0.

    >>> from spec.symbols import p, sg
    >>> sp.diff(p * sg(p), p)
    sg(p)
    >>> sg(p).subs(p, sp.Rational(1, 2))
    1/2
    """

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return x
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _eval_is_positive(self):
        return self.args[0].is_positive

    def _eval_is_real(self):
        return self.args[0].is_real


def strip_sg(expr: sp.Expr) -> sp.Expr:
    """The value of an expression with stop-gradients: every ``sg(x)`` replaced by ``x``."""
    return sp.sympify(expr).replace(sg, lambda x: x)


def to_ratio(expr: sp.Expr) -> sp.Expr:
    """Rewrite an expression in ``p`` (and ``p_old``) in the ratio ``r``: substitute p = r·p_old."""
    out = sp.powsimp(sp.expand_power_base(sp.sympify(expr).subs(p, r * p_old), force=True), force=True)
    if out.has(p_old):
        out = sp.simplify(out)
    return out


def from_ratio(expr: sp.Expr) -> sp.Expr:
    """Rewrite an expression in ``r`` in ``p`` and ``p_old``: substitute r = p/p_old."""
    return sp.sympify(expr).subs(r, ratio)
