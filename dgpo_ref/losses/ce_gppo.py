"""``ce_gppo``: GPPO with the boundary gradients scaled by beta1 (LN) and beta2 (HP)."""

from ..method import LossSpec, Terms, Tokens, log, log1p
from .grpo import high_negative


def terms(t: Tokens, *, eps_low: float, eps_high: float, beta1: float, beta2: float,
          dual_clip: float | None) -> Terms:
    """J = V·r/sg(r) on LN and HP, so J's value equals V there; HN as grpo."""
    ln = log(beta1) + log1p(-eps_low)
    hp = log(beta2) + log1p(eps_high)
    hn_v, hn_j = high_negative(t, dual_clip)
    log_v = t.by_region(IN=t.log_r, LN=ln, HP=hp, LP=t.log_r, HN=hn_v)
    log_j = t.by_region(IN=t.log_r, LN=ln, HP=hp, LP=t.log_r, HN=hn_j)
    return Terms(log_v=log_v, log_j=log_j)


SPEC = LossSpec(
    name="ce_gppo",
    terms=terms,
    summary="gppo with boundary weights beta1·(1-eps_low) on LN and beta2·(1+eps_high) on HP",
)
