"""``dapo``: the grpo surrogate with DAPO's clip-higher defaults (eps_high 0.28)."""

from ..method import LossSpec
from .grpo import terms

SPEC = LossSpec(
    name="dapo",
    terms=terms,
    defaults={"eps_low": 0.2, "eps_high": 0.28, "dual_clip": None},
    summary="grpo with clip-higher defaults eps_low 0.2, eps_high 0.28",
)
