"""``dppo_tv``: V = min(r, trunc) where p − p_old <= delta_high (A > 0) / >= −delta_low (A <= 0), else 0."""

import torch

from ..method import NEG_INF, LossSpec, Terms, Tokens, log


def masked_truncation(t: Tokens, keep: torch.Tensor, trunc: float) -> Terms:
    """The DPPO family's terms: log V = min(log r, log trunc) where ``keep``, −inf elsewhere;
    J = sg(V)·log p (its sign follows log p)."""
    log_v = torch.clamp(t.log_r, max=log(trunc)).masked_fill(~keep, NEG_INF)
    return Terms(log_v=log_v, log_j=log_v + torch.log(t.log_p.abs()), sign_j=torch.sign(t.log_p))


def terms(t: Tokens, *, eps_low: float, eps_high: float, delta_low: float, delta_high: float,
          trunc: float) -> Terms:
    """p − p_old = p_old·(r − 1), formed as exp(log p_old)·expm1(log r) (no cancellation)."""
    diff = torch.exp(t.log_p_old) * torch.expm1(t.log_r)
    keep = torch.where(t.adv > 0, diff <= delta_high, diff >= -delta_low)
    return masked_truncation(t, keep, trunc)


SPEC = LossSpec(
    name="dppo_tv",
    terms=terms,
    summary="DPPO-Binary-TV: truncated IS weight min(r, trunc), masked where |p - p_old| leaves the threshold",
)
