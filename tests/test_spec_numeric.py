"""The lambdified spec agrees with an independent float64 evaluation written from docs/methods.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spec import CASES, METHODS
from spec.numeric import lambdified, pycode


def _clip(r, h):
    return min(max(r, 1 - h["eps_low"]), 1 + h["eps_high"])


def _cap(x, c):
    return x if c is None else min(x, c)


#: the methods ref_V and ref_J write out by hand (a later method: its record's worked examples and the
#: generated conformance tests check it; add its formulas here to extend this independent check)
WRITTEN = ("pg", "grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "dgpo")


def ref_V(method: str, region: str, sign: int, r: float, h: dict) -> float:
    """V = p·W by hand, from the table in docs/methods.md."""
    el, eh, c = h.get("eps_low"), h.get("eps_high"), h.get("dual_clip")
    dual = 0.0 if (c is not None and r > c) else r
    table = {
        "pg": {k: r for k in ("IN", "LN", "HP", "LP", "HN")},
        "grpo": {"IN": r, "LN": 0.0, "HP": 0.0, "LP": r, "HN": dual},
        "cispo": {k: _clip(r, h) for k in ("IN", "LN", "HP", "LP", "HN")},
        "gppo": {"IN": r, "LN": 1 - el, "HP": 1 + eh, "LP": r, "HN": dual},
        "ce_gppo": {"IN": r, "LN": h.get("beta1", 1) * (1 - el), "HP": h.get("beta2", 1) * (1 + eh),
                    "LP": r, "HN": dual},
        "aspo": {"IN": 1 / r if sign > 0 else r, "LN": 0.0, "HP": 0.0, "LP": _cap(1 / r, c), "HN": _cap(r, c)},
        "dgpo": {"IN": r, "LP": r, "HN": r,
                 "LN": math.exp((h.get("n", 1) + 1) * math.log(r) - h.get("n", 1) * math.log(1 - el)),
                 "HP": math.exp(math.log(1 + eh) / h.get("m", 1) + math.log(r) * (h.get("m", 1) - 1) / h.get("m", 1))},
    }
    table["dapo"] = table["grpo"]
    return table[method][region]


def ref_J(method: str, region: str, sign: int, p: float, p_old: float, h: dict) -> float:
    """The surrogate's value by hand (docs/methods.md)."""
    r = p / p_old
    el, eh, c = h.get("eps_low"), h.get("eps_high"), h.get("dual_clip")
    if method == "cispo":
        return _clip(r, h) * math.log(p)
    if method in ("grpo", "dapo") and region in ("LN", "HP"):
        return 1 - el if region == "LN" else 1 + eh
    if method == "aspo" and region in ("LN", "HP"):
        return 1 - el if region == "LN" else 1 / (1 + eh)
    if method in ("grpo", "dapo", "gppo", "ce_gppo") and region == "HN" and c is not None and r > c:
        return c
    return ref_V(method, region, sign, r, h)  # value of r·(frozen factor) is V itself


def _random_hparams(rng: np.random.Generator, method: str) -> dict:
    """A point of the method's domains (its record's hyper-parameters); None for an optional one 30 %."""
    out = {}
    for h in METHODS[method].hparams:
        hi = h.upper if h.upper != math.inf else h.lower + 3.0
        if h.optional and rng.random() < 0.3:
            out[h.name] = None
        elif h.integer:
            out[h.name] = int(rng.integers(h.lower + 1, h.lower + 7))
        else:
            out[h.name] = float(rng.uniform(h.lower + 0.05 * (hi - h.lower), hi - 0.05 * (hi - h.lower)))
    return out


def _random_ratio(rng: np.random.Generator, region: str, h: dict) -> float:
    left, right = 1 - h["eps_low"], 1 + h["eps_high"]
    if region == "IN":
        return float(rng.uniform(left, right))
    if region in ("LN", "LP"):
        return float(left * rng.uniform(1e-3, 0.999))
    return float(right * rng.uniform(1.001, 8.0))


@pytest.mark.parametrize("method", [m for m in METHODS if m in WRITTEN])
def test_lambdified_V_W_J_match_hand_written_float64(method):
    rng = np.random.default_rng(sum(map(ord, method)))
    spec = METHODS[method]
    fns = {(reg, s, k): lambdified(spec, reg, s, k) for reg, s in CASES for k in ("V_r", "W", "J_value")}
    for _ in range(40):
        h = _random_hparams(rng, method)
        p_old = float(rng.uniform(0.01, 1.0))
        for reg, s in CASES:
            r = _random_ratio(rng, reg, h)
            p = r * p_old
            want_v = ref_V(method, reg, s, r, h)
            assert fns[(reg, s, "V_r")](r, **h) == pytest.approx(want_v, rel=1e-12, abs=1e-14), (reg, s, h, r)
            assert fns[(reg, s, "W")](p, p_old, **h) == pytest.approx(want_v / p, rel=1e-11), (reg, s, h, r)
            want_j = ref_J(method, reg, s, p, p_old, h)
            assert fns[(reg, s, "J_value")](p, p_old, **h) == pytest.approx(want_j, rel=1e-11, abs=1e-14)


def test_pycode_is_plain_python_without_sympy():
    src = pycode(METHODS["dgpo"], "HP", 1)
    assert "sympy" not in src and "sg(" not in src
    value = eval(src, {"math": math}, {"r": 2.0, "eps_high": 0.2, "m": 2})  # our own generated code
    assert value == pytest.approx(math.sqrt(1.2) * 2.0 ** 0.5)
    grpo_hn = pycode(METHODS["grpo"], "HN", -1)
    assert eval(grpo_hn, {"math": math}, {"r": 4.0, "dual_clip": math.inf}) == 4.0
    assert eval(grpo_hn, {"math": math}, {"r": 4.0, "dual_clip": 3.0}) == 0
