"""``sapo``: the sigmoid gate J = (4/τ)·σ(τ(r − 1)), V = 4·r·σ(x)(1 − σ(x)), τ by the sign of A."""

import math

import torch
import torch.nn.functional as F

from ..method import LossSpec, Terms, Tokens

LOG4 = math.log(4.0)


def terms(t: Tokens, *, eps_low: float, eps_high: float, tau_pos: float, tau_neg: float) -> Terms:
    """In log space: log σ(x) and log(1 − σ(x)) = log σ(−x), x = τ·(r − 1) with r − 1 = expm1(log r)."""
    tau = t.pick(t.adv > 0, tau_pos, tau_neg)
    x = tau * torch.expm1(t.log_r)
    log_gate = F.logsigmoid(x)
    return Terms(log_v=LOG4 + t.log_r + log_gate + F.logsigmoid(-x), log_j=LOG4 - torch.log(tau) + log_gate)


SPEC = LossSpec(
    name="sapo",
    terms=terms,
    summary="soft adaptive gate: V = 4·r·σ(τ(r−1))·(1−σ(τ(r−1))), tau_pos for A > 0, tau_neg otherwise",
)
