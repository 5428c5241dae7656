"""``grpo``: PPO's min/clip surrogate (hard clip), with an optional dual clip on HN."""

import torch

from ..method import NEG_INF, LossSpec, Terms, Tokens, log, log1p


def high_negative(t: Tokens, dual_clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log V, log J) on HN: V = J = r, except V = 0 and J = c (const) where dual_clip c is set and r > c."""
    if dual_clip is None:
        return t.log_r, t.log_r
    over = t.ratio > dual_clip
    return t.log_r.masked_fill(over, NEG_INF), t.log_r.masked_fill(over, log(dual_clip))


def terms(t: Tokens, *, eps_low: float, eps_high: float, dual_clip: float | None) -> Terms:
    hn_v, hn_j = high_negative(t, dual_clip)
    log_v = t.by_region(IN=t.log_r, LN=NEG_INF, HP=NEG_INF, LP=t.log_r, HN=hn_v)
    log_j = t.by_region(IN=t.log_r, LN=log1p(-eps_low), HP=log1p(eps_high), LP=t.log_r, HN=hn_j)
    return Terms(log_v=log_v, log_j=log_j)


SPEC = LossSpec(
    name="grpo",
    terms=terms,
    summary="PPO/GRPO hard clip: no gradient on LN and HP; optional dual clip c on HN",
)
