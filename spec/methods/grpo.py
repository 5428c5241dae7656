"""grpo: PPO's min/clip surrogate (hard clipping), with optional dual clip on HN.

LN and HP lose their gradient (the clipped constant wins the min); with dual clip c, HN tokens with
r > c are clipped to the constant c as well. ``dual_clip=None`` is c = oo (no clipping).
"""

import sympy as sp

from spec.core import Branch, Example, MethodSpec
from spec.hparams import DUAL_CLIP, EPS_HIGH, EPS_LOW
from spec.methods.pg import PG_BRANCH
from spec.symbols import dual_clip, eps_high, eps_low, r, ratio

#: HN with dual clip: r while r <= c, the constant c beyond (shared by gppo, ce_gppo)
DUAL_CLIP_HN = Branch.from_V(sp.Piecewise((r, r <= dual_clip), (0, True)),
                             J=sp.Piecewise((ratio, ratio <= dual_clip), (dual_clip, True)))


#: what hard clipping fails, and why (grpo, dapo)
HARD_CLIP_DISPROVED = {
    "continuity": "W drops to 0 at the breakpoints",
    "monotonicity": "W is constant (0 on LN and HP)",
    "bias": "|W - 1/p_old| is exactly 1/p_old on LN and HP",
    "family": "no n, m: it would have to be GPPO and pg at once",
}


def hard_clip_spec(name: str, title: str, eps_high_default: float, examples: tuple[Example, ...],
                   sources: str = "") -> MethodSpec:
    """PPO-style hard clipping; grpo and dapo differ only in eps_high's default."""
    return MethodSpec(
        name=name,
        title=title,
        summary="V = r inside; 0 on LN and HP (clipped constant); dual clip zeroes HN beyond c",
        hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(eps_high_default),
                 DUAL_CLIP.with_default(None)),
        branches={
            "IN": PG_BRANCH,
            "LN": Branch.from_V(sp.S.Zero, J=1 - eps_low),
            "HP": Branch.from_V(sp.S.Zero, J=1 + eps_high),
            "LP": PG_BRANCH,
            "HN": DUAL_CLIP_HN,
        },
        disproved=HARD_CLIP_DISPROVED,
        examples=examples,
        sources=sources,
    )


SPEC = hard_clip_spec("grpo", "GRPO / PPO clip (optional dual clip)", 0.2, examples=(
    Example(0.5, -1, 0.0), Example(1.5, 1, 0.0), Example(0.5, 1, 0.5), Example(1.5, -1, 1.5),
    Example(1.1, -1, 1.1)), sources="verl `vanilla` (clip_ratio_low/high 0.2; its dual clip clip_ratio_c 3.0 is "
    "always on); TRL `grpo`, `bnpo`, `dr_grpo`, `luspo` (epsilon 0.2; delta is dual_clip)")
