"""dgpo_ref: torch reference losses for DGPO and the methods it is compared with (torch only).

>>> import dgpo_ref
>>> {"dgpo", "grpo", "sapo"} <= set(dgpo_ref.LOSSES)  # one row per spec record (spec/methods/)
True

See docs/api.md for the API and docs/methods.md for every method's weights and surrogates.
"""

from .advantages import drgrpo_advantages, grpo_advantages
from .aggregate import AGG_MODES, token_weights
from .loss import dgpo_loss, policy_loss, token_weight
from .method import REGIONS, LossSpec, Terms, Tokens, classify
from .registry import LOSSES, get_spec

__all__ = [
    "AGG_MODES",
    "LOSSES",
    "REGIONS",
    "LossSpec",
    "Terms",
    "Tokens",
    "classify",
    "dgpo_loss",
    "drgrpo_advantages",
    "get_spec",
    "grpo_advantages",
    "policy_loss",
    "token_weight",
    "token_weights",
]
