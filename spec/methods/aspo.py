"""aspo (Archer2.0): positive tokens inside the trust region get the flipped weight V = 1/r.

LN and HP are hard-clipped (V = 0); LP gets min(1/r, c), HN min(r, c) with c the dual clip
(``dual_clip=None`` is c = oo: no cap).
"""

import sympy as sp

from spec.core import Branch, Example, MethodSpec
from spec.hparams import DUAL_CLIP, EPS_HIGH, EPS_LOW
from spec.symbols import A, dual_clip, eps_high, eps_low, r, ratio, sg

_INSIDE = Branch.from_V(sp.Piecewise((1 / r, A > 0), (r, True)),
                        J=sp.Piecewise((ratio / sg(ratio) ** 2, A > 0), (ratio, True)))

SPEC = MethodSpec(
    name="aspo",
    title="ASPO (Archer2.0, asymmetric importance sampling)",
    summary="A>0 inside: V = 1/r; LN, HP: 0; LP: min(1/r, c); HN: min(r, c)",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), DUAL_CLIP.with_default(3.0)),
    branches={
        "IN": _INSIDE,
        "LN": Branch.from_V(sp.S.Zero, J=1 - eps_low),
        "HP": Branch.from_V(sp.S.Zero, J=1 / (1 + eps_high)),
        "LP": Branch.from_V(sp.Min(1 / r, dual_clip),
                            J=sp.Min(1 / sg(ratio), dual_clip) * ratio / sg(ratio)),
        "HN": Branch.from_V(sp.Min(r, dual_clip), J=sp.Min(sg(ratio), dual_clip) * ratio / sg(ratio)),
    },
    disproved={
        "continuity": "hard clipping drops W to 0 at the breakpoints",
        "boundedness": "V = 1/r inside for A > 0: W = 1/(r*p) exceeds 1/p_old below r = 1",
        "monotonicity": "W is constant (0) on LN and HP",
        "bias": "hard clipping's bias is 1/p_old on LN, HP; IN is inverted for A > 0",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(1.1, 1, 1 / 1.1), Example(1.1, -1, 1.1), Example(0.5, -1, 0.0), Example(1.5, 1, 0.0),
              Example(0.5, 1, 2.0), Example(0.25, 1, 3.0), Example(2.0, -1, 2.0), Example(4.0, -1, 3.0)),
)
