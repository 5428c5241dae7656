"""dapo: GRPO's hard clip with DAPO's clip-higher defaults (eps_low 0.2, eps_high 0.28)."""

from spec.methods.grpo import hard_clip_spec

SPEC = hard_clip_spec("dapo", "DAPO (clip-higher)", 0.28)
