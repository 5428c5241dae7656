"""``tis``: REINFORCE with a truncated importance weight, V = min(r, trunc), J = sg(V)·log p."""

import torch

from ..method import LossSpec, Terms, Tokens, log


def terms(t: Tokens, *, eps_low: float, eps_high: float, trunc: float) -> Terms:
    log_v = torch.clamp(t.log_r, max=log(trunc))
    return Terms(log_v=log_v, log_j=log_v + torch.log(t.log_p.abs()), sign_j=torch.sign(t.log_p))


SPEC = LossSpec(
    name="tis",
    terms=terms,
    summary="truncated importance sampling on the REINFORCE term: V = min(r, trunc), no lower clip",
)
