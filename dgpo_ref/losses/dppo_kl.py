"""``dppo_kl``: dppo_tv's truncated weight with the mask on the token's binary KL (verl's formula, its 1e-8)."""

import torch

from ..method import LossSpec, Terms, Tokens
from .dppo_tv import masked_truncation

TINY = 1e-8


def terms(t: Tokens, *, eps_low: float, eps_high: float, delta_low: float, delta_high: float,
          trunc: float) -> Terms:
    """KL = p_old·(−log r) + (1 − p_old)·log((1 − p_old + 1e-8)/(1 − p + 1e-8)), 1 − x = −expm1(log x)."""
    q_old, q = -torch.expm1(t.log_p_old), -torch.expm1(t.log_p)
    kl = torch.exp(t.log_p_old) * -t.log_r + q_old * (torch.log(q_old + TINY) - torch.log(q + TINY))
    keep = torch.where(t.adv > 0, (kl <= delta_high) | (t.log_r <= 0), (kl <= delta_low) | (t.log_r >= 0))
    return masked_truncation(t, keep, trunc)


SPEC = LossSpec(
    name="dppo_kl",
    terms=terms,
    summary="DPPO-Binary-KL: truncated IS weight min(r, trunc), masked where the binary KL leaves the threshold",
)
