"""``vespo``: the Gamma weight V = exp(λ + k·log r − λ·r), (k, λ) by the sign of A; J = sg(V)·log p."""

import torch

from ..method import LossSpec, Terms, Tokens


def terms(t: Tokens, *, eps_low: float, eps_high: float, k_pos: float, lambda_pos: float, k_neg: float,
          lambda_neg: float) -> Terms:
    """log V = λ + k·log r − λ·r (TRL's form; A >= 0 takes the positive pair, as TRL does)."""
    pos = t.adv >= 0
    k = t.pick(pos, k_pos, k_neg)
    lam = t.pick(pos, lambda_pos, lambda_neg)
    log_v = lam + k * t.log_r - lam * t.ratio
    return Terms(log_v=log_v, log_j=log_v + torch.log(t.log_p.abs()), sign_j=torch.sign(t.log_p))


SPEC = LossSpec(
    name="vespo",
    terms=terms,
    summary="VESPO's Gamma weighting per token: V = e^λ·r^k·e^(−λr), exact for one-token completions",
)
