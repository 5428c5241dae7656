"""DGPO's family facts: which known methods its (n, m) family contains.

Each :class:`FamilyClaim` says: substituting (or taking the limit of) n, m in a method's weights
gives a target method's weights on some regions. ``dgpo derive`` shows them as derived facts and
obligation 8 of ``proofs/`` proves them (for a method without n, m the substitution does nothing, so
the claim says the method *is* the target there, which the baselines fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from spec.core import CASES, MethodSpec
from spec.symbols import dual_clip, m, n


@dataclass(frozen=True)
class FamilyClaim:
    label: str
    subs: dict  # {symbol: value} substituted into the method
    limit: tuple | None  # (symbol, point) limit taken after substitution, or None
    target: str  # registry name of the method it must equal
    regions: tuple[str, ...]  # regions compared

    def apply(self, expr: sp.Expr) -> sp.Expr:
        out = expr.subs(self.subs)
        if self.limit is not None and out.has(self.limit[0]):
            out = sp.limit(out, self.limit[0], self.limit[1])
        return out

    def pairs(self, spec: MethodSpec, target: MethodSpec) -> list[tuple[str, int, sp.Expr, sp.Expr]]:
        """(region, sign, V_r of the method at the claim, V_r of the target), dual clip off."""
        off = {dual_clip: sp.oo}
        return [(region, sign, self.apply(spec.case(spec.V_r(region), sign)).subs(off),
                 target.case(target.V_r(region), sign).subs(off))
                for region, sign in CASES if region in self.regions]


CLAIMS: tuple[FamilyClaim, ...] = (
    FamilyClaim("n = -1, m = 1 is GPPO", {n: -1, m: 1}, None, "gppo", ("IN", "LN", "HP", "LP", "HN")),
    FamilyClaim("n = 0 is the policy gradient (on LN)", {n: 0}, None, "pg", ("LN",)),
    FamilyClaim("m -> oo tends to the policy gradient (on HP)", {}, (m, sp.oo), "pg", ("HP",)),
)
