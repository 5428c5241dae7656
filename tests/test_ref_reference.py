"""An independent float64 evaluation of docs/methods.md's table, in r-space with plain ``math``.

Written from the table, not from dgpo_ref: the tests compare dgpo_ref's gradients and loss values
against it. ``region`` and ``weight_v`` / ``value_j`` take Python floats.
"""

from __future__ import annotations

import math

from spec import METHODS

#: the methods whose formulas this module writes out by hand. A method added later is checked
#: against its spec by the generated conformance tests and against its record's worked examples;
#: adding its formulas here too (and to tests/test_spec_numeric.py) extends the independent check.
WRITTEN = ("pg", "grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "dgpo")
#: the defaults of every method's record (spec/methods/): the one fact; the formulas below are ours
DEFAULTS = {name: spec.defaults() for name, spec in METHODS.items()}


def region(r: float, a: float, eps_low: float, eps_high: float) -> str:
    if r < 1 - eps_low:
        return "LN" if a < 0 else "LP"
    if r > 1 + eps_high:
        return "HP" if a > 0 else "HN"
    return "IN"


def _cap(x, c):
    return x if c is None else min(x, c)


def weight_v(method: str, r: float, a: float, log_p: float = -1.0, **hp) -> float:
    """V = p·W for one token."""
    hp = {**DEFAULTS[method], **hp}
    el, eh, c = hp["eps_low"], hp["eps_high"], hp.get("dual_clip")
    reg = region(r, a, el, eh)
    hn_dual = 0.0 if (c is not None and r > c) else r
    if method == "pg":
        return r
    if method in ("grpo", "dapo"):
        return {"IN": r, "LN": 0.0, "HP": 0.0, "LP": r, "HN": hn_dual}[reg]
    if method == "cispo":
        return min(max(r, 1 - el), 1 + eh)
    if method in ("gppo", "ce_gppo"):
        b1, b2 = (hp["beta1"], hp["beta2"]) if method == "ce_gppo" else (1.0, 1.0)
        return {"IN": r, "LN": b1 * (1 - el), "HP": b2 * (1 + eh), "LP": r, "HN": hn_dual}[reg]
    if method == "aspo":
        inside = 1 / r if a > 0 else r
        return {"IN": inside, "LN": 0.0, "HP": 0.0, "LP": _cap(1 / r, c), "HN": _cap(r, c)}[reg]
    if method == "dgpo":
        n, m = hp["n"], hp["m"]
        ln = r ** (n + 1) / (1 - el) ** n
        hp_ = (1 + eh) ** (1 / m) * r ** ((m - 1) / m)
        return {"IN": r, "LN": ln, "HP": hp_, "LP": r, "HN": r}[reg]
    raise KeyError(method)


def value_j(method: str, r: float, a: float, log_p: float = -1.0, **hp) -> float:
    """The surrogate's value J for one token (the loss is −A·J)."""
    hp = {**DEFAULTS[method], **hp}
    el, eh, c = hp["eps_low"], hp["eps_high"], hp.get("dual_clip")
    reg = region(r, a, el, eh)
    if method == "cispo":
        return min(max(r, 1 - el), 1 + eh) * log_p
    if method in ("grpo", "dapo", "gppo", "ce_gppo") and reg == "HN" and c is not None and r > c:
        return c
    if method in ("grpo", "dapo") and reg in ("LN", "HP"):
        return 1 - el if reg == "LN" else 1 + eh
    if method == "aspo" and reg in ("LN", "HP"):
        return 1 - el if reg == "LN" else 1 / (1 + eh)
    return weight_v(method, r, a, log_p, **hp)


def log_weight_v(method: str, log_r: float, a: float, **hp) -> float:
    """log V for one token from log r, for ratios far outside float range (−inf where V = 0)."""
    hp = {**DEFAULTS[method], **hp}
    el, eh, c = hp["eps_low"], hp["eps_high"], hp.get("dual_clip")
    if log_r < math.log(1 - el):
        reg = "LN" if a < 0 else "LP"
    elif log_r > math.log1p(eh):
        reg = "HP" if a > 0 else "HN"
    else:
        reg = "IN"
    log_c = math.inf if c is None else math.log(c)
    hn = -math.inf if (method != "aspo" and log_r > log_c) else log_r
    table = {
        "pg": {},
        "grpo": {"LN": -math.inf, "HP": -math.inf, "HN": hn},
        "dapo": {"LN": -math.inf, "HP": -math.inf, "HN": hn},
        "cispo": {k: min(max(log_r, math.log(1 - el)), math.log1p(eh)) for k in ("IN", "LN", "HP", "LP", "HN")},
        "gppo": {"LN": math.log(1 - el), "HP": math.log1p(eh), "HN": hn},
        "aspo": {"IN": -log_r if a > 0 else log_r, "LN": -math.inf, "HP": -math.inf,
                 "LP": min(-log_r, log_c), "HN": min(log_r, log_c)},
    }.get(method)
    if method == "ce_gppo":
        table = {"LN": math.log(hp["beta1"] * (1 - el)), "HP": math.log(hp["beta2"] * (1 + eh)), "HN": hn}
    if method == "dgpo":
        n, m = hp["n"], hp["m"]
        table = {"LN": (n + 1) * log_r - n * math.log(1 - el), "HP": math.log1p(eh) / m + (m - 1) / m * log_r}
    return table.get(reg, log_r)


def load():
    """This module, loaded by path (robust to how pytest imports the tests directory)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__)
    spec = importlib.util.spec_from_file_location("dgpo_ref_test_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_dgpo_is_the_w_form_with_continuity_constants():
    """The V table for dgpo equals p·C_left·pⁿ on LN and p·C_right·p^(−1/m) on HP (DESIGN.md)."""
    el, eh, n, m, p_old = 0.2, 0.2, 2, 3, 0.3
    c_left = 1 / (p_old ** (n + 1) * (1 - el) ** n)
    c_right = (1 + eh) ** (1 / m) / p_old ** ((m - 1) / m)
    for p, a, w in ((0.1, -1.0, c_left * 0.1**n), (0.5, 1.0, c_right * 0.5 ** (-1 / m))):
        assert math.isclose(weight_v("dgpo", p / p_old, a, n=n, m=m), p * w, rel_tol=1e-12)
    # continuity at both breakpoints, approached from outside
    for r, a in ((1 - el, -1.0), (1 + eh, 1.0)):
        outside = r * (1 - 1e-12) if a < 0 else r * (1 + 1e-12)
        assert math.isclose(weight_v("dgpo", outside, a, n=n, m=m), r, rel_tol=1e-9)


def test_every_written_method_is_a_spec_method():
    assert set(WRITTEN) <= set(METHODS)


def test_log_reference_agrees_with_ratio_reference():
    for method in WRITTEN:
        for r in (0.01, 0.5, 0.9, 1.1, 1.5, 2.5, 4.0, 50.0):
            for a in (-1.0, 0.0, 1.0):
                v = weight_v(method, r, a)
                log_v = log_weight_v(method, math.log(r), a)
                assert (v == 0 and log_v == -math.inf) or math.isclose(math.log(v), log_v, abs_tol=1e-12), (
                    method, r, a)
