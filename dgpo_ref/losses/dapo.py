"""``dapo``: the grpo surrogate with DAPO's clip-higher default eps_high (spec/methods/dapo.py)."""

from ..method import LossSpec
from .grpo import terms

SPEC = LossSpec(
    name="dapo",
    terms=terms,
    summary="grpo with clip-higher defaults (a larger eps_high)",
)
