"""cispo (MiniMax-M1): J = sg(clip(r))·log p for either sign of A, so V = clip(r).

On LN/LP the weight on ∇π is (1−eps_low)/p, which diverges as p -> 0.
"""

import sympy as sp

from spec.core import Branch, Example, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW
from spec.symbols import eps_high, eps_low, p, r, ratio, sg

_INSIDE = Branch.from_V(r, J=sg(ratio) * sp.log(p))
_LOW = Branch.from_V(1 - eps_low, J=(1 - eps_low) * sp.log(p))
_HIGH = Branch.from_V(1 + eps_high, J=(1 + eps_high) * sp.log(p))

SPEC = MethodSpec(
    name="cispo",
    title="CISPO (clipped IS weight, REINFORCE)",
    summary="V = clip(r, 1-eps_low, 1+eps_high) in every region, for either sign of A",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2)),
    branches={"IN": _INSIDE, "LN": _LOW, "LP": _LOW, "HP": _HIGH, "HN": _HIGH},
    disproved={
        "boundedness": "W = (1-eps_low)/p on LN and LP grows without bound as p -> 0",
        "vanishing": "W = (1-eps_low)/p -> oo as p -> 0 on LN",
        "monotonicity": "W = const/p grows as p -> 0",
        "bias": "const/p exceeds 2/p_old for small p; LP and HN are reweighted",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 0.8), Example(1.5, 1, 1.2), Example(0.5, 1, 0.8), Example(1.5, -1, 1.2),
              Example(1.1, 1, 1.1)),
    sources="verl `cispo` (clip_ratio_low, clip_ratio_high 0.2); not TRL's `cispo`, which is `tis`",
)
