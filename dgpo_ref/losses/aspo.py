"""``aspo`` (Archer2.0): inverted ratio 1/r for positive tokens; dual clip c caps LP and HN."""

import torch

from ..method import NEG_INF, LossSpec, Terms, Tokens, log, log1p


def _capped(log_x: torch.Tensor, dual_clip: float | None) -> torch.Tensor:
    """log min(x, c); no cap when dual_clip is None."""
    return log_x if dual_clip is None else torch.clamp(log_x, max=log(dual_clip))


def terms(t: Tokens, *, eps_low: float, eps_high: float, dual_clip: float | None) -> Terms:
    """J's value equals V except on LN (J = 1-eps_low) and HP (J = 1/(1+eps_high)), where V = 0."""
    inside = torch.where(t.adv > 0, -t.log_r, t.log_r)
    lp, hn = _capped(-t.log_r, dual_clip), _capped(t.log_r, dual_clip)
    log_v = t.by_region(IN=inside, LN=NEG_INF, HP=NEG_INF, LP=lp, HN=hn)
    log_j = t.by_region(IN=inside, LN=log1p(-eps_low), HP=-log1p(eps_high), LP=lp, HN=hn)
    return Terms(log_v=log_v, log_j=log_j)


SPEC = LossSpec(
    name="aspo",
    terms=terms,
    summary="asymmetric importance sampling: V = 1/r for A > 0 inside the clip; LP/HN capped at c",
)
