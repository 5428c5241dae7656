"""``gpg``: REINFORCE on log π without a ratio, V = 1 and J = log p in every region."""

import torch

from ..method import LossSpec, Terms, Tokens


def terms(t: Tokens, *, eps_low: float, eps_high: float) -> Terms:
    """eps_low/eps_high only place the region boundaries used by the metrics."""
    # J = log p <= 0; its sign follows log p (which the input check allows up to +1e-6)
    return Terms(log_v=torch.zeros_like(t.log_r), log_j=torch.log(t.log_p.abs()), sign_j=torch.sign(t.log_p))


SPEC = LossSpec(
    name="gpg",
    terms=terms,
    summary="group policy gradient: REINFORCE on log π (V = 1), no ratio, no clip",
)
