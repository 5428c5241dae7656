"""``cispo`` (MiniMax-M1): V = clip(r), J = sg(clip(r))·log p, in every region, either sign of A."""

import torch

from ..method import LossSpec, Terms, Tokens


def terms(t: Tokens, *, eps_low: float, eps_high: float) -> Terms:
    log_v = torch.log(torch.clamp(t.ratio, 1.0 - eps_low, 1.0 + eps_high))
    # J = clip(r)·log p <= 0; its sign follows log p (which the input check allows up to +1e-6).
    return Terms(log_v=log_v, log_j=log_v + torch.log(t.log_p.abs()), sign_j=torch.sign(t.log_p))


SPEC = LossSpec(
    name="cispo",
    terms=terms,
    summary="clipped importance-sampling weight on the REINFORCE term, gradient kept everywhere",
)
