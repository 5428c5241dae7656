"""Per-call metrics, as plain Python floats (one device synchronization for all of them).

Keys: ``loss``; ``tokens`` (masked-in count); ``region/<R>`` (fraction of masked-in tokens in
region R, the five sum to 1); ``v_mean/<R>`` and ``v_max/<R>`` (V over those tokens, 0.0 for an
empty region); ``kl/k1`` = mean(−log r) and ``kl/k3`` = mean(r − 1 − log r) (Schulman's
estimators of KL(π_old‖π_θ)); ``ratio/min``, ``ratio/mean``, ``ratio/max``; ``nonfinite_tokens``
(masked-in tokens whose gradient entry is ±inf in ``log_prob``'s dtype: a trainer may skip such a
step). Every statistic over an empty mask (or an empty batch, (B, 0) or (0, L)) is 0.0, never NaN.
"""

from __future__ import annotations

import math

import torch

from .method import REGIONS, Terms, Tokens

METRIC_NAMES: tuple[str, ...] = (
    "loss", "tokens",
    *(f"{stat}/{region}" for region in REGIONS for stat in ("region", "v_mean", "v_max")),
    "kl/k1", "kl/k3", "ratio/min", "ratio/mean", "ratio/max", "nonfinite_tokens",
)
"""The keys of :func:`loss_metrics`, in the order of :func:`metric_values`."""


_SERIES_BELOW = 0.5
"""|log r| below which e^x − 1 − x (the k3 estimator) comes from its Taylor series, not expm1(x) − x
(inductor's vectorized CPU expm1 is exp(x) − 1, which cancels for small x)."""
_SERIES = tuple(1.0 / math.factorial(k) for k in range(2, 16))  # 1/2!, ..., 1/15!: error < 1e-16 relative
_HUGE_ABOVE = 80.0
"""log r above which a token's k3 term is taken as e^x alone, summed with a shift (expm1 overflows
float32 at 88.7; the dropped 1 + x is under 1e-33 of the term)."""


def _max_over(x: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """max of ``x`` over ``sel``, -inf where ``sel`` is empty (also for an empty batch)."""
    minus_inf = torch.full((), -torch.inf, dtype=x.dtype, device=x.device)
    return torch.where(sel, x, minus_inf).amax() if x.numel() else minus_inf


def _scaled_sum(top: torch.Tensor, shifted_sum: torch.Tensor) -> torch.Tensor:
    """exp(top)·Σ exp(x − top) in float64, i.e. Σ exp(x) without overflow: 0 when top = −inf (nothing,
    or all terms 0), +inf when top = +inf."""
    top = top.to(torch.float64)
    out = torch.exp(top) * shifted_sum
    return torch.where(top == -torch.inf, 0.0, torch.where(top == torch.inf, torch.inf, out))


def _exp_minus_1_minus(x: torch.Tensor, e_x: torch.Tensor | None = None) -> torch.Tensor:
    """e^x − 1 − x without cancellation: its Taylor series for |x| < 0.5, else expm1(x) − x, or
    (e^x − 1) − x from ``e_x`` = e^x when given (for |x| ≥ 0.5, e^x − 1 loses no digits)."""
    poly = torch.full_like(x, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        poly = poly * x + c
    far = torch.expm1(x) - x if e_x is None else (e_x - 1) - x
    return torch.where(x.abs() < _SERIES_BELOW, poly * x * x, far)


_UNSHIFTED_RANGE = 80.0
"""|max log| within which unshifted per-token exponentials are exact enough in float32 (e^88.7
overflows; a term under e^-87 is then below 1e-3 of the largest and denormal rounding costs < 1e-10)."""


def metric_values(log_r: torch.Tensor, region: torch.Tensor, log_v: torch.Tensor, finite: torch.Tensor,
                  mask: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """The metrics as one float64 tensor, ordered as :data:`METRIC_NAMES` (no device synchronization).

    ``log_r``, ``region`` are :class:`Tokens`' fields and ``log_v`` :class:`Terms`'; ``finite`` is
    true where a token's gradient entry is finite in ``log_prob``'s dtype.

    Counts are exact (integer sums); every sum is accumulated in float64. Per-token exponentials are
    taken in the compute dtype, shifted by the maximum (Σ e^x = e^M Σ e^(x − M), the e^M in float64),
    so nothing overflows and no per-token float64 transcendental is needed; extremes are
    exp(max log), exactly the float64 result."""
    return _values(log_r, region, log_v, finite, mask, loss, shift=True)[0]


def unshifted_metric_values(log_r, region, log_v, finite, mask, loss, ratio=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`metric_values` without the max shift, and whether that was exact enough.

    The same statistics with e^x summed directly: the maxima and the sums then need no second
    pass over the tokens, so the compiled fast path computes them in the loss's own loops. Valid when
    every maximum log (V per region, r) lies within ±80 (or the set is empty): the second value
    is that condition as a 0-d bool tensor; where it is false the caller uses :func:`metric_values`.

    ``ratio``: r = exp(log r) where the caller has it already (the fast path): the ratio's sum and
    k3's r − 1 − log r for |log r| ≥ 0.5 (no cancellation there) then take it instead of two more
    exponentials per token."""
    return _values(log_r, region, log_v, finite, mask, loss, shift=False, ratio=ratio)


def _values(log_r, region, log_v, finite, mask, loss, shift: bool, ratio=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    f64 = torch.float64
    count = mask.sum().to(f64)
    denom = count.clamp(min=1)
    values = [loss, count]
    sels = [mask & (region == code) for code in range(len(REGIONS))]
    tops = [_max_over(log_v, sel) for sel in sels]
    if shift:  # each token's own region's max: one exp per token serves all five sums
        top = tops[-1]
        for code in reversed(range(len(REGIONS) - 1)):
            top = torch.where(region == code, tops[code], top)
        e = torch.exp(log_v - top)
    else:
        e = torch.exp(log_v)
    for sel, region_top in zip(sels, tops):
        n_sel = sel.sum().to(f64)
        summed = torch.where(sel, e, 0.0).to(f64).sum()
        total = _scaled_sum(region_top, summed) if shift else summed
        values += [n_sel / denom, total / n_sel.clamp(min=1), torch.exp(region_top.to(f64))]
    x = torch.where(mask, log_r, 0.0)
    top = _max_over(x, mask)
    lowest = -_max_over(-x, mask)
    if shift:
        e = torch.exp(x - top)                                  # ≤ 1 over the mask
        huge = mask & (x > _HUGE_ABOVE)
        k3 = torch.where(mask & ~huge, _exp_minus_1_minus(x), 0.0).to(f64).sum() \
            + _scaled_sum(top, torch.where(huge, e, 0.0).to(f64).sum())
        ratio_sum = _scaled_sum(top, torch.where(mask, e, 0.0).to(f64).sum())
    else:
        r = torch.exp(x) if ratio is None else ratio
        k3 = torch.where(mask, _exp_minus_1_minus(x, r), 0.0).to(f64).sum()
        ratio_sum = torch.where(mask, r, 0.0).to(f64).sum()
    values += [
        (-x).to(f64).sum() / denom,
        k3 / denom,
        torch.where(count == 0, 0.0, torch.exp(lowest.to(f64))),
        ratio_sum / denom,
        torch.exp(top.to(f64)),
        (mask & ~finite).sum(),
    ]
    in_range = None
    if not shift:
        maxima = torch.stack([*tops, top])
        in_range = ((maxima == -torch.inf) | (maxima.abs() <= _UNSHIFTED_RANGE)).all()
    return torch.stack([v.to(f64) for v in values]), in_range


def loss_metrics(tokens: Tokens, terms: Terms, coef: torch.Tensor, mask: torch.Tensor,
                 loss: torch.Tensor) -> dict[str, float]:
    """:func:`metric_values` as a dict of plain floats (one device synchronization)."""
    return dict(zip(METRIC_NAMES, metric_values(tokens.log_r, tokens.region, terms.log_v, torch.isfinite(coef), mask, loss).tolist()))
