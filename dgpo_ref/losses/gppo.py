"""``gppo`` (Klear): the clip keeps a constant gradient, 1-eps_low on LN and 1+eps_high on HP."""

from ..method import LossSpec, Terms, Tokens
from .ce_gppo import terms as ce_gppo_terms


def terms(t: Tokens, *, eps_low: float, eps_high: float, dual_clip: float | None) -> Terms:
    """ce_gppo with beta1 = beta2 = 1."""
    return ce_gppo_terms(t, eps_low=eps_low, eps_high=eps_high, beta1=1.0, beta2=1.0, dual_clip=dual_clip)


SPEC = LossSpec(
    name="gppo",
    terms=terms,
    summary="gradient-preserving clip: V = 1-eps_low on LN, 1+eps_high on HP",
)
