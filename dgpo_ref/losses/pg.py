"""``pg``: the unbiased importance-sampled policy gradient, V = r and J = r in every region."""

from ..method import LossSpec, Terms, Tokens


def terms(t: Tokens, *, eps_low: float, eps_high: float) -> Terms:
    """eps_low/eps_high only place the region boundaries used by the metrics."""
    return Terms(log_v=t.log_r, log_j=t.log_r)


SPEC = LossSpec(
    name="pg",
    terms=terms,
    summary="importance-sampled policy gradient, no clipping",
)
