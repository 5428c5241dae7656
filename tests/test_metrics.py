"""dgpo_ref.metrics.metric_values against the plain float64 formulas, where it matters: ratios past
float32's exp overflow (log r > 88.7), tiny |log r| (k3 = e^x − 1 − x cancels in expm1(x) − x),
V spanning hundreds of orders of magnitude, empty regions and an empty mask."""

import math

import pytest
import torch

from dgpo_ref.method import REGIONS
from dgpo_ref.metrics import METRIC_NAMES, metric_values, unshifted_metric_values


def _float64_oracle(log_r, region, log_v, finite, mask, loss):
    """Every statistic straight from its definition, in float64 (exp of float64 values)."""
    lr, lv = log_r.double(), log_v.double()
    n = int(mask.sum())
    denom = max(n, 1)
    out = {"loss": float(loss), "tokens": float(n)}
    for code, name in enumerate(REGIONS):
        sel = mask & (region == code)
        v = torch.exp(lv[sel])
        out[f"region/{name}"] = int(sel.sum()) / denom
        out[f"v_mean/{name}"] = float(v.sum()) / max(int(sel.sum()), 1)
        out[f"v_max/{name}"] = float(v.max()) if v.numel() else 0.0
    x = lr[mask]
    r = torch.exp(x)
    out["kl/k1"] = float((-x).sum()) / denom
    out["kl/k3"] = float((torch.expm1(x) - x).sum()) / denom
    out["ratio/min"] = float(r.min()) if n else 0.0
    out["ratio/mean"] = float(r.sum()) / denom
    out["ratio/max"] = float(r.max()) if n else 0.0
    out["nonfinite_tokens"] = float((mask & ~finite).sum())
    return out


CASES = {  # name: (log r scale, log V scale, masked-in fraction, extra)
    "on-policy": (1e-4, 1.0, 0.9, None),
    "typical": (0.3, 1.0, 0.8, None),
    "far": (5.0, 30.0, 0.8, None),
    "overflowing-ratio": (0.3, 1.0, 1.0, "huge"),
    "huge-and-tiny-v": (1.0, 200.0, 0.7, None),
    "empty-mask": (0.3, 1.0, 0.0, None),
    "one-region": (0.3, 1.0, 0.9, "one-region"),
}


def _case(case, dtype):
    scale_r, scale_v, kept, extra = CASES[case]
    g = torch.Generator().manual_seed(sorted(CASES).index(case))
    shape = (6, 50)
    log_r = (torch.randn(shape, generator=g, dtype=torch.float64) * scale_r).to(dtype)
    log_v = (torch.randn(shape, generator=g, dtype=torch.float64) * scale_v).to(dtype)
    region = torch.randint(0, len(REGIONS), shape, generator=g).to(torch.int8)
    mask = torch.rand(shape, generator=g) < kept
    if extra == "huge":
        log_r[0, :3] = torch.tensor([95.0, 120.0, 89.0], dtype=dtype)  # e^x overflows float32, not float64
    if extra == "one-region":
        region[:] = 2
    finite = torch.rand(shape, generator=g) < 0.9
    return log_r, region, log_v, finite, mask, torch.tensor(-0.25, dtype=dtype)


def _assert_matches(values, want):
    got = dict(zip(METRIC_NAMES, values.tolist()))
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isfinite(got[key]), key
        assert math.isclose(got[key], value, rel_tol=1e-6, abs_tol=1e-300), (key, got[key], value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_match_the_float64_definitions(case, dtype):
    args = _case(case, dtype)
    _assert_matches(metric_values(*args), _float64_oracle(*args))


@pytest.mark.parametrize("given_ratio", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_unshifted_metrics_match_where_they_claim_to(case, dtype, given_ratio):
    """The fast path's unshifted sums: equal to the definitions when in range, and they say when not
    (then the fast path uses metric_values); out of range exactly in the two extreme cases. With
    r = exp(log r) given (as the fast path passes it), k3 and the ratio's mean are taken from it."""
    args = _case(case, dtype)
    values, in_range = unshifted_metric_values(*args, ratio=torch.exp(args[0]) if given_ratio else None)
    assert bool(in_range) == (case not in ("overflowing-ratio", "huge-and-tiny-v"))
    if in_range:
        _assert_matches(values, _float64_oracle(*args))
