"""ce_gppo: GPPO with the two boundary constants scaled by beta1 (LN) and beta2 (HP)."""

from spec.core import Example, MethodSpec
from spec.hparams import BETA1, BETA2, DUAL_CLIP, EPS_HIGH, EPS_LOW
from spec.methods.gppo import gppo_branches
from spec.symbols import beta1, beta2

SPEC = MethodSpec(
    name="ce_gppo",
    title="CE-GPPO (scaled gradient-preserving clip)",
    summary="V = beta1·(1-eps_low) on LN, beta2·(1+eps_high) on HP; as grpo elsewhere",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), BETA1.with_default(0.5),
             BETA2.with_default(1.0), DUAL_CLIP.with_default(None)),
    branches=gppo_branches(beta1, beta2),
    disproved={
        "continuity": "the boundary constants are scaled by beta1, beta2 != 1: V jumps at the breakpoints",
        "boundedness": "W = beta1*(1-eps_low)/p on LN grows without bound as p -> 0",
        "vanishing": "W = const/p -> oo as p -> 0 on LN",
        "monotonicity": "W = const/p grows as p -> 0",
        "bias": "const/p exceeds 2/p_old for small p",
        "logit_bound": "beta1*(1-eps_low) exceeds 1-eps_low when beta1 > 1",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 0.4), Example(1.5, 1, 1.2), Example(0.5, 1, 0.5), Example(1.5, -1, 1.5)),
)
