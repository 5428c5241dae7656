"""Per-call metrics, as plain Python floats (one device synchronization for all of them).

Keys: ``loss``; ``tokens`` (masked-in count); ``region/<R>`` (fraction of masked-in tokens in
region R, the five sum to 1); ``v_mean/<R>`` and ``v_max/<R>`` (V over those tokens, 0.0 for an
empty region); ``kl/k1`` = mean(−log r) and ``kl/k3`` = mean(r − 1 − log r) (Schulman's
estimators of KL(π_old‖π_θ)); ``ratio/min``, ``ratio/mean``, ``ratio/max``; ``nonfinite_tokens``
(masked-in tokens whose gradient entry is ±inf in ``log_prob``'s dtype: a trainer may skip such a
step). Every statistic over an empty mask (or an empty batch, (B, 0) or (0, L)) is 0.0, never NaN.
"""

from __future__ import annotations

import torch

from .method import REGIONS, Terms, Tokens


def _masked(x: torch.Tensor, mask: torch.Tensor, fill: float) -> torch.Tensor:
    return torch.where(mask, x, torch.full_like(x, fill))


def _extreme(x: torch.Tensor, reduce) -> torch.Tensor:
    """``x.amax()`` / ``x.amin()``, and 0 for an empty batch ((B, 0) or (0, L)), where torch raises."""
    return reduce(x) if x.numel() else x.new_zeros(())


METRIC_NAMES: tuple[str, ...] = (
    "loss", "tokens",
    *(f"{stat}/{region}" for region in REGIONS for stat in ("region", "v_mean", "v_max")),
    "kl/k1", "kl/k3", "ratio/min", "ratio/mean", "ratio/max", "nonfinite_tokens",
)
"""The keys of :func:`loss_metrics`, in the order of :func:`metric_values`."""


def metric_values(tokens: Tokens, terms: Terms, finite: torch.Tensor, mask: torch.Tensor,
                  loss: torch.Tensor) -> torch.Tensor:
    """The metrics as one float64 tensor, ordered as :data:`METRIC_NAMES` (no device synchronization).

    ``finite`` is true where a token's gradient entry is finite in ``log_prob``'s dtype."""
    f64 = torch.float64  # statistics in float64: exact counts and fractions
    count = mask.sum().to(f64)
    denom = count.clamp(min=1)
    log_r = _masked(tokens.log_r.to(f64), mask, 0.0)
    ratio, v = torch.exp(log_r), torch.exp(terms.log_v.to(f64))
    values = [loss, count]
    for code in range(len(REGIONS)):
        sel = mask & (tokens.region == code)
        n_sel = sel.sum().to(f64)
        values += [n_sel / denom, _masked(v, sel, 0.0).sum() / n_sel.clamp(min=1), _extreme(_masked(v, sel, 0.0), torch.amax)]
    empty = count == 0
    values += [
        (-log_r).sum() / denom,
        (torch.expm1(log_r) - log_r).sum() / denom,
        torch.where(empty, 0.0, _extreme(_masked(ratio, mask, torch.inf), torch.amin)),
        _masked(ratio, mask, 0.0).sum() / denom,
        _extreme(_masked(ratio, mask, 0.0), torch.amax),
        (mask & ~finite).sum(),
    ]
    return torch.stack([x.to(f64) for x in values])


def loss_metrics(tokens: Tokens, terms: Terms, coef: torch.Tensor, mask: torch.Tensor,
                 loss: torch.Tensor) -> dict[str, float]:
    """:func:`metric_values` as a dict of plain floats (one device synchronization)."""
    return dict(zip(METRIC_NAMES, metric_values(tokens, terms, torch.isfinite(coef), mask, loss).tolist()))
