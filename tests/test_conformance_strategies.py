"""The conformance strategies cover what the issue asks for, within the ci profile's budget:
every region with both signs of A and A = 0, exact breakpoints, several hyper-parameter sets,
p down to 1e-30 and |log r| up to 1e3 (extreme scale)."""

from __future__ import annotations

import importlib.util
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dgpo_conformance import properties as C
from dgpo_conformance.gentests import OUT_DIR

CI = settings(settings.get_profile("ci"))
WANTED = {("IN", 1), ("IN", -1), ("IN", 0), ("LN", -1), ("LP", 1), ("LP", 0), ("HP", 1), ("HN", -1), ("HN", 0)}


def _spec(method: str) -> C.MethodSpec:
    path = OUT_DIR / f"test_{method}.py"
    mod_spec = importlib.util.spec_from_file_location(f"_cov_{method}", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.SPEC


def _survey(spec: C.MethodSpec, scale: str) -> dict:
    seen = {"cases": set(), "exact": 0, "hparams": set(), "min_log_p": 0.0, "max_abs_log_r": 0.0}

    @CI
    @given(data=st.data())
    def run(data):
        batch = data.draw(C.batches(spec, {}, scale=scale))
        m, adv, lr = batch.mask, batch.advantages[batch.mask], batch.log_r[batch.mask]
        region = C.classify(torch.exp(lr), adv, batch.hp)
        for code, a in zip(region.tolist(), torch.sign(adv).int().tolist()):
            seen["cases"].add((C.REGIONS[code], a))
        points = [math.log(at) for _, at in spec.points(batch.hp)]
        seen["exact"] += sum(1 for x in lr.tolist() for pnt in points if abs(x - pnt) <= 8e-16 * (1 + abs(pnt)))
        seen["hparams"].add(tuple(sorted(batch.hp.items(), key=lambda kv: kv[0])))
        seen["min_log_p"] = min(seen["min_log_p"], float(batch.log_prob[m].min()))
        seen["max_abs_log_r"] = max(seen["max_abs_log_r"], float(lr.abs().max()))

    run()
    return seen


def test_ci_batches_cover_every_region_sign_and_breakpoint():
    seen = _survey(_spec("dgpo"), "normal")
    assert WANTED <= seen["cases"], WANTED - seen["cases"]
    assert seen["exact"] > 0
    assert len(seen["hparams"]) >= 3
    assert {h[1] for hp in seen["hparams"] for h in hp if h[0] in ("n", "m")} > {1}


def test_extreme_scale_reaches_tiny_p_and_huge_ratios():
    seen = _survey(_spec("dgpo"), "extreme")
    assert seen["min_log_p"] <= math.log(1e-30)
    assert seen["max_abs_log_r"] >= 700
    grid = C.extreme_grid({"eps_low": 0.2, "eps_high": 0.2})
    assert float(grid.log_r.abs().max()) == 1e3
    assert float(grid.log_prob.min()) < math.log(1e-30) and float(grid.log_prob.max()) == 0.0


def test_dual_clip_breakpoints_and_none_are_drawn():
    seen = _survey(_spec("grpo"), "normal")
    clips = {dict(hp)["dual_clip"] for hp in seen["hparams"]}
    assert None in clips and any(c is not None for c in clips)
