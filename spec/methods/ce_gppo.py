"""ce_gppo: GPPO with the two boundary constants scaled by beta1 (LN) and beta2 (HP)."""

from spec.core import MethodSpec
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
)
