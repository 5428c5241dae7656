"""The eight proof obligations, each a function from a method's spec to a list of claims.

Claims are stated on W·p_old = V/r, i.e. W in units of the policy gradient's 1/p_old (p_old > 0,
so every inequality and limit below is equivalent to the one on W itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from proofs.engine import Identity, Inequality, Limit
from spec import symbols as S
from spec.core import CASES, JUNCTIONS, LEFT, MethodSpec, ratio_condition
from spec.family import CLAIMS
from spec.methods import METHODS


def _w(spec: MethodSpec, region: str, sign: int) -> sp.Expr:
    """W·p_old in the ratio: V/r."""
    return spec.case(spec.V_r(region), sign) / S.r


def continuity(spec: MethodSpec) -> list:
    """1. W and the surrogate's value agree with IN's where each region meets IN."""
    points = spec.breakpoints()
    claims = []
    for region, name, sign in JUNCTIONS:
        at = {S.p: points[name] * S.p_old}
        for what, get in (("W", spec.W), ("J", spec.J_value)):
            claims.append(Identity(f"{what} continuous at {region}|IN (r = {points[name]})",
                                   spec.case(get(region), sign).subs(at),
                                   spec.case(get("IN"), sign).subs(at)))
    return claims


def boundedness(spec: MethodSpec) -> list:
    """2. 0 <= W <= 1/p_old in every region."""
    return [Inequality(f"0 <= W*p_old <= 1 on {region} (A {'>' if sign > 0 else '<'} 0)",
                       sp.And(_w(spec, region, sign) >= 0, _w(spec, region, sign) <= 1),
                       ratio_condition(region)) for region, sign in CASES]


def vanishing(spec: MethodSpec) -> list:
    """3. W -> 0 as p -> 0+ on LN (p_old fixed, so r -> 0+)."""
    return [Limit("W*p_old -> 0 as r -> 0+ on LN", _w(spec, "LN", -1), S.r, sp.S.Zero, sp.S.Zero)]


def monotonicity(spec: MethodSpec) -> list:
    """4. W strictly increasing in p on LN, strictly decreasing on HP."""
    return [
        Inequality("dW/dp > 0 on LN", sp.diff(_w(spec, "LN", -1), S.r) > 0, ratio_condition("LN")),
        Inequality("dW/dp < 0 on HP", sp.diff(_w(spec, "HP", 1), S.r) < 0, ratio_condition("HP")),
    ]


def bias(spec: MethodSpec) -> list:
    """5. |W − 1/p_old| < 1/p_old on LN and HP (hard clipping's is exactly 1/p_old); 0 elsewhere."""
    claims = []
    for region, sign in CASES:
        w, where = _w(spec, region, sign), ratio_condition(region)
        if region in ("LN", "HP"):
            claims.append(Inequality(f"|W*p_old - 1| < 1 on {region}", sp.Abs(w - 1) < 1, where))
        else:
            claims.append(Identity(f"W = 1/p_old on {region} (A {'>' if sign > 0 else '<'} 0)", w, sp.S.One, where))
    return claims


def surrogate(spec: MethodSpec) -> list:
    """6. d(surrogate)/dp = W on every region."""
    return [Identity(f"dJ/dp = W on {region} (A {'>' if sign > 0 else '<'} 0)",
                     S.strip_sg(sp.diff(spec.case(spec.J(region), sign), S.p)),
                     spec.case(spec.W(region), sign), ratio_condition(region)) for region, sign in CASES]


def logit_bound(spec: MethodSpec) -> list:
    """7. V >= 0 everywhere (so the logit gradient A·V·(e_t − π) has norm <= √2|A|V by the
    softmax lemma) and V <= 1 − eps_low on LN."""
    claims = [Inequality(f"V >= 0 on {region}", spec.case(spec.V_r(region), sign) >= 0,
                         ratio_condition(region)) for region, sign in CASES]
    claims.append(Inequality("V <= 1 - eps_low on LN", spec.V_r("LN") <= LEFT, ratio_condition("LN")))
    return claims


def family(spec: MethodSpec) -> list:
    """8. n = −1, m = 1 is GPPO; n = 0 is the policy gradient; m -> oo tends to it."""
    return [Identity(f"{claim.label}: V on {region}", lhs, rhs, ratio_condition(region))
            for claim in CLAIMS
            for region, sign, lhs, rhs in claim.pairs(spec, METHODS[claim.target])]


@dataclass(frozen=True)
class Theorem:
    name: str
    title: str
    claims: Callable[[MethodSpec], list]
    needs_softmax_lemma: bool = False


#: theorem name -> obligation, numbered as in the issue
THEOREMS: dict[str, Theorem] = {t.name: t for t in (
    Theorem("continuity", "1. W and surrogate value continuous at both breakpoints", continuity),
    Theorem("boundedness", "2. 0 <= W <= 1/p_old in every region", boundedness),
    Theorem("vanishing", "3. W -> 0 as p -> 0+ on LN", vanishing),
    Theorem("monotonicity", "4. W increasing on LN, decreasing on HP", monotonicity),
    Theorem("bias", "5. |W - 1/p_old| < 1/p_old on LN, HP; 0 on IN, LP, HN", bias),
    Theorem("surrogate", "6. d(surrogate)/dp = W on every region", surrogate),
    Theorem("logit_bound", "7. logit gradient <= sqrt(2)|A|V, V <= 1-eps_low on LN", logit_bound, True),
    Theorem("family", "8. n=-1,m=1 is GPPO; n=0 is PG; m->oo tends to PG", family),
)}
