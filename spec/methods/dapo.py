"""dapo: GRPO's hard clip with DAPO's clip-higher defaults (eps_low 0.2, eps_high 0.28)."""

from spec.core import Example
from spec.methods.grpo import hard_clip_spec

SPEC = hard_clip_spec("dapo", "DAPO (clip-higher)", 0.28, examples=(
    Example(1.25, 1, 1.25), Example(1.3, 1, 0.0), Example(1.3, -1, 1.3)),
    sources="TRL `dapo`, its default loss_type, with epsilon_high set (0.28; unset it equals epsilon: `grpo`)")
