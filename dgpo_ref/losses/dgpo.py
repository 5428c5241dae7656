"""``dgpo``: W = C_left·pⁿ on LN and W = C_right·p^(−1/m) on HP, continuous at both breakpoints.

In log space, V = r^(n+1)/(1−eps_low)^n on LN and (1+eps_high)^(1/m)·r^((m−1)/m) on HP
(docs/methods.md); J's value equals V in every region. No p_old^(−(n+1)) is ever formed.
"""

from ..method import LossSpec, Terms, Tokens, log1p


def terms(t: Tokens, *, eps_low: float, eps_high: float, n: int, m: int) -> Terms:
    left = (n + 1) * t.log_r - n * log1p(-eps_low)
    right = log1p(eps_high) / m + (m - 1) / m * t.log_r
    log_v = t.by_region(IN=t.log_r, LN=left, HP=right, LP=t.log_r, HN=t.log_r)
    return Terms(log_v=log_v, log_j=log_v)


SPEC = LossSpec(
    name="dgpo",
    terms=terms,
    summary="decoupled gradient: polynomial damping on LN, sub-linear growth on HP",
)
