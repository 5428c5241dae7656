"""gppo (Klear): the clipped constant keeps a gradient, J = const·r/sg(r), so V = const on LN, HP.

``gppo_like`` with scales beta1, beta2 on the two constants is CE-GPPO; GPPO is beta1 = beta2 = 1.
"""

import sympy as sp

from spec.core import Branch, Example, MethodSpec
from spec.hparams import DUAL_CLIP, EPS_HIGH, EPS_LOW
from spec.methods.grpo import DUAL_CLIP_HN
from spec.methods.pg import PG_BRANCH
from spec.symbols import eps_high, eps_low, ratio, sg


def gppo_branches(scale_low: sp.Expr, scale_high: sp.Expr) -> dict[str, Branch]:
    """V = scale·bound on LN and HP with the surrogate bound·r/sg(r); as grpo elsewhere."""
    low, high = scale_low * (1 - eps_low), scale_high * (1 + eps_high)
    return {
        "IN": PG_BRANCH,
        "LN": Branch.from_V(low, J=low * ratio / sg(ratio)),
        "HP": Branch.from_V(high, J=high * ratio / sg(ratio)),
        "LP": PG_BRANCH,
        "HN": DUAL_CLIP_HN,
    }


SPEC = MethodSpec(
    name="gppo",
    title="GPPO (Klear, gradient-preserving clip)",
    summary="V = 1-eps_low on LN, 1+eps_high on HP (W = const/p diverges as p -> 0); as grpo elsewhere",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), DUAL_CLIP.with_default(None)),
    branches=gppo_branches(sp.S.One, sp.S.One),
    disproved={
        "boundedness": "W = (1-eps_low)/p on LN grows without bound as p -> 0",
        "vanishing": "W = (1-eps_low)/p -> oo as p -> 0 on LN",
        "monotonicity": "W = const/p grows as p -> 0",
        "bias": "const/p exceeds 2/p_old for small p",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 0.8), Example(1.5, 1, 1.2), Example(0.5, 1, 0.5), Example(1.5, -1, 1.5)),
)
