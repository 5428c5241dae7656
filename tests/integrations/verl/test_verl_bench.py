"""bench/bench_verl.py (``dgpo bench --only verl``): both candidates compute the loss verl would,
side by side, and the report states the target from the measured ratio."""

import math
import os

import torch
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla

from bench import bench_verl
from bench.report import _mark, verl_lines


def test_rows_are_measured_side_by_side_with_vanilla_as_the_base():
    rows = bench_verl.run(((4, 64),), dtypes=("float32",), repeats=3)
    (row,) = rows
    assert set(row["ms"]) == {"verl vanilla", "dgpo (plugin)", "dgpo (plugin, eager)"}
    assert row["ratio_to_vanilla"]["verl vanilla"] == 1.0
    assert all(math.isfinite(v) and v > 0 for v in row["ratio_to_vanilla"].values())
    text = "\n".join(verl_lines(rows))
    ratio = row["ratio_to_vanilla"]["dgpo (plugin)"]
    assert f"dgpo (plugin) / verl vanilla = {ratio} (target <= 1.0): {_mark(ratio <= 1.0)}" in text


def test_inside_the_trust_region_both_candidates_are_the_same_loss():
    """With every ratio in [0.8, 1.2] dgpo's loss is vanilla's: the bench times the same computation."""
    inputs = bench_verl.make_inputs(4, 64, torch.float32)
    old = inputs["old_log_prob"]
    inputs["log_prob"] = (old + torch.empty_like(old).uniform_(-0.1, 0.1)).clamp(max=0.0).requires_grad_()
    fns = bench_verl.candidates(inputs)  # registers the plugin
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    args = (old, inputs["log_prob"], inputs["advantages"], inputs["response_mask"], "token-mean", bench_verl._config())
    want, _ = compute_policy_loss_vanilla(*args)
    got, metrics = get_policy_loss_fn("dgpo")(*args)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert metrics["actor/pg_clipfrac"] == 0.0
    assert set(fns) == {"verl vanilla", "dgpo (plugin)", "dgpo (plugin, eager)"}


def test_compile_mode_is_restored(monkeypatch):
    monkeypatch.delenv("DGPO_COMPILE", raising=False)
    with bench_verl._compile_mode("never"):
        assert os.environ["DGPO_COMPILE"] == "never"
    assert "DGPO_COMPILE" not in os.environ
    monkeypatch.setenv("DGPO_COMPILE", "always")
    with bench_verl._compile_mode("never"):
        assert os.environ["DGPO_COMPILE"] == "never"
    assert os.environ["DGPO_COMPILE"] == "always"
