"""dgpo: decoupled decay of the weight on ∇π on the two harmful boundaries (arXiv 2603.14389).

W = 1/p_old (the policy gradient) everywhere except

* LN (r < 1−eps_low, A < 0): W = C_left·pⁿ  (polynomial decay to 0 as p -> 0),
* HP (r > 1+eps_high, A > 0): W = C_right·p^(−1/m)  (reciprocal radical decay),

with ``C_left``, ``C_right`` **solved** here from continuity of W at r = 1−eps_low and
r = 1+eps_high (:data:`CONTINUITY`), for symbolic n and m. The surrogate freezes the decay factor
with a stop-gradient, J = C·sg(p)^k·p, which is the published code's
exp(log p + k·sg(log p) − ...) form; its value equals V, so J is continuous too.
"""

from __future__ import annotations

import math

import sympy as sp

from spec.core import LEFT, RIGHT, Branch, Example, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW, M, N
from spec.methods.pg import PG_BRANCH
from spec.symbols import m, n, p, p_old, sg

#: the unknown constants, as symbols (names as in shared/DESIGN.md)
C_left, C_right = sp.symbols("C_left C_right", positive=True)

#: the policy-gradient weight on ∇π that DGPO keeps inside the trust region
W_PG = 1 / p_old
#: the ansatz on each boundary, with the unknown constants
ANSATZ: dict[str, sp.Expr] = {"LN": C_left * p**n, "HP": C_right * p ** (-1 / m)}
#: continuity of W where each boundary meets IN: p = (1−eps_low)·p_old and p = (1+eps_high)·p_old
CONTINUITY: dict[str, sp.Eq] = {
    "LN": sp.Eq(ANSATZ["LN"].subs(p, LEFT * p_old), W_PG.subs(p, LEFT * p_old)),
    "HP": sp.Eq(ANSATZ["HP"].subs(p, RIGHT * p_old), W_PG.subs(p, RIGHT * p_old)),
}


def _solve_unique(equation: sp.Eq, unknown: sp.Symbol) -> sp.Expr:
    """Solve a continuity equation for its constant; it must have exactly one solution."""
    solutions = sp.solve(equation, unknown, dict=False)
    if len(solutions) != 1:
        raise ArithmeticError(f"continuity for {unknown} has {len(solutions)} solutions: {solutions}")
    return sp.powsimp(sp.expand_power_base(solutions[0], force=True), force=True)


#: the solved constants (never typed in): C_left = 1/(p_old^(n+1)(1−eps_low)^n), ...
CONSTANTS: dict[str, sp.Expr] = {
    "C_left": _solve_unique(CONTINUITY["LN"], C_left),
    "C_right": _solve_unique(CONTINUITY["HP"], C_right),
}


def boundary_branch(ansatz: sp.Expr, constant: sp.Symbol, value: sp.Expr) -> Branch:
    """W = ansatz with the constant solved; J freezes W's p-dependence: J = sg(W)·p."""
    W = ansatz.subs(constant, value)
    return Branch(W=W, J=W.subs(p, sg(p)) * p)


SPEC = MethodSpec(
    name="dgpo",
    title="DGPO (decoupled gradient policy optimization)",
    summary="W = C_left·p^n on LN, C_right·p^(-1/m) on HP, 1/p_old elsewhere; C solved from continuity",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), N.with_default(1), M.with_default(2)),
    branches={
        "IN": PG_BRANCH,
        "LN": boundary_branch(ANSATZ["LN"], C_left, CONSTANTS["C_left"]),
        "HP": boundary_branch(ANSATZ["HP"], C_right, CONSTANTS["C_right"]),
        "LP": PG_BRANCH,
        "HN": PG_BRANCH,
    },
    constants=CONSTANTS,
    disproved={},  # all eight obligations hold
    # at the defaults: LN V = r^2/0.8, HP V = sqrt(1.2*r)
    examples=(Example(0.5, -1, 0.25 / 0.8), Example(1.5, 1, math.sqrt(1.2 * 1.5)), Example(0.5, 1, 0.5),
              Example(1.5, -1, 1.5)),
)
