"""The step-by-step derivation ``dgpo derive`` prints, as data (a list of :class:`Step`).

Every method gets: its hyper-parameters, then per region W on ∇π, V = p·W in the ratio, the
surrogate J and the check dJ/dp = W. DGPO first gets the ansatz, the two continuity equations,
their solutions (``sympy.solve``, never typed) and the family facts (n = −1, m = 1 is GPPO, ...).
Hyper-parameter values, when given, are substituted after solving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from spec import symbols as S
from spec.core import CASES, REGIONS, MethodSpec
from spec.family import CLAIMS
from spec.methods import METHODS, dgpo


@dataclass(frozen=True)
class Step:
    title: str
    expr: sp.Basic  # an expression, an Eq, or a Boolean fact
    note: str = ""


def _show_subs(values: Mapping[sp.Symbol, sp.Expr]):
    return lambda e: e.subs(values) if values else e


def dgpo_steps(values: Mapping[sp.Symbol, sp.Expr]) -> list[Step]:
    """Ansatz, continuity, solve, and the family facts."""
    at = _show_subs(values)
    steps = [
        Step("ansatz on LN: weight on grad p decays polynomially", sp.Eq(sp.Symbol("W_LN"), dgpo.ANSATZ["LN"])),
        Step("ansatz on HP: reciprocal radical decay", sp.Eq(sp.Symbol("W_HP"), dgpo.ANSATZ["HP"])),
        Step("inside (and LP, HN): the policy gradient", sp.Eq(sp.Symbol("W_IN"), dgpo.W_PG)),
        Step("continuity at r = 1 - eps_low (p = (1 - eps_low)*p_old)", dgpo.CONTINUITY["LN"]),
        Step("continuity at r = 1 + eps_high (p = (1 + eps_high)*p_old)", dgpo.CONTINUITY["HP"]),
    ]
    for name, sym in (("C_left", dgpo.C_left), ("C_right", dgpo.C_right)):
        steps.append(Step(f"solve for {name} (sympy.solve)", sp.Eq(sym, at(dgpo.CONSTANTS[name]))))
    for region in ("LN", "HP"):
        steps.append(Step(f"V = p*W on {region}, in r", sp.Eq(sp.Symbol(f"V_{region}"),
                                                              at(dgpo.SPEC.V_r(region)))))
    for claim in CLAIMS:
        pairs = claim.pairs(dgpo.SPEC, METHODS[claim.target])
        holds = all(sp.simplify(lhs - rhs) == 0 for _, _, lhs, rhs in pairs)
        for region, _, lhs, rhs in pairs:
            if region in ("LN", "HP"):
                steps.append(Step(f"fact: {claim.label}: dgpo's V_{region} there equals {claim.target}'s",
                                  sp.Eq(lhs, rhs, evaluate=False),
                                  note="derived: holds" if holds else "derived: FAILS"))
    return steps


def region_steps(spec: MethodSpec, values: Mapping[sp.Symbol, sp.Expr]) -> list[Step]:
    """Per region: W, V(r), J, and dJ/dp = W checked by SymPy."""
    at = _show_subs(values)
    steps = []
    for region in REGIONS:
        W, J = spec.W(region), spec.J(region)
        ok = all(sp.simplify(S.strip_sg(sp.diff(spec.case(J, s), S.p)) - spec.case(W, s)) == 0
                 for reg, s in CASES if reg == region)
        steps += [
            Step(f"{region}: weight on grad p", sp.Eq(sp.Symbol(f"W_{region}"), at(W))),
            Step(f"{region}: V = p*W, in r", sp.Eq(sp.Symbol(f"V_{region}"), at(spec.V_r(region)))),
            Step(f"{region}: surrogate (sg = stop-gradient)", sp.Eq(sp.Symbol(f"J_{region}"), at(J)),
                 note="dJ/dp = W: checked" if ok else "dJ/dp = W: FAILS"),
        ]
    return steps


def derivation(spec: MethodSpec, values: Mapping[sp.Symbol, sp.Expr]) -> list[Step]:
    head = dgpo_steps(values) if spec.name == "dgpo" else []
    return head + region_steps(spec, values)


def constants(spec: MethodSpec, values: Mapping[sp.Symbol, sp.Expr]) -> dict[str, sp.Expr]:
    return {k: sp.sympify(v).subs(values) for k, v in spec.constants.items()}
