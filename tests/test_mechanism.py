"""bench.mechanism: the tabular experiment behind docs/mechanism.md, on configurations of a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dgpo_ref
from bench import mechanism as M
from clikit import CliError

ROOT = Path(__file__).resolve().parents[1]
TINY = M.Setting(prompts=4, vocab=8, length=1, correct=2, group=4, steps=40, staleness=6, lr=20.0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """As the experiment runs: one thread (tiny tensors; more threads only contend on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stale_runs() -> dict[str, M.Recorder]:
    return {m: M.run_method(m, TINY, [0, 1, 2, 3]) for m in ("dgpo", "cispo", "grpo")}


def test_staleness_puts_tokens_in_ln_and_metrics_agree(stale_runs):
    for m, rec in stale_runs.items():
        ln = rec.series["ln_frac"][:-1]  # per update and seed, from dgpo_ref.classify
        assert ln.max() > 0.05, m
        # the loss's own pooled region metric is the mean over seeds of the per-seed fractions
        assert rec.pooled_regions["LN"] == pytest.approx(ln.mean(), rel=1e-9), m
        assert sum(rec.pooled_regions.values()) == pytest.approx(1.0)


def test_on_policy_makes_every_method_the_same_update():
    s = M.Setting(**{**TINY.__dict__, "staleness": 0})
    runs = {m: M.run_method(m, s, [0, 1]) for m in dgpo_ref.LOSSES}
    ref = runs["pg"].series
    assert ref["reward"][-1].min() > ref["reward"][0].max()  # it learns, so equality below is not vacuous
    for m, rec in runs.items():
        assert rec.pooled_regions["IN"] == 1.0, m
        for key in ("reward", "entropy", "min_logp"):
            np.testing.assert_allclose(rec.series[key], ref[key], rtol=1e-12, atol=0, err_msg=f"{m} {key}")


def test_minibatches_move_the_ratio_without_staleness():
    """Each mini-batch holds a share of every prompt's samples, so the second update of a batch
    sees a policy the first one moved: ratios leave 1 although the sampler is not behind."""
    s = M.Setting(**{**TINY.__dict__, "staleness": 0, "minibatches": 4, "group": 8})
    rec = M.run_method("dgpo", s, [0, 1, 2, 3])
    assert rec.pooled_regions["IN"] < 0.99
    first = rec.series["ln_frac"][:-1][0::4]  # the first update of every batch is exactly on-policy
    assert np.all(first == 0) and np.nanmax(rec.series["ln_frac"]) > 0


def test_stale_methods_differ(stale_runs):
    """The same seeds, samples and staleness: the registry loss (not a fixed one) drives the update."""
    finals = {m: rec.series["min_logp"][-1] for m, rec in stale_runs.items()}
    assert not np.allclose(finals["dgpo"], finals["cispo"])
    assert not np.allclose(finals["dgpo"], finals["grpo"])


@pytest.mark.parametrize("p", [1e-4, 1e-6, 1e-8])
def test_push_on_ln_logit_follows_the_law(p):
    """Through the real losses and autograd: CISPO and GPPO push an LN token's logit with a bounded
    weight (1 − eps_low), DGPO with r^(n+1)/(1 − eps_low)^n, GRPO not at all."""
    p_old, adv = 0.1, -1.0
    r = p / p_old
    eps = dgpo_ref.get_spec("dgpo").defaults["eps_low"]
    n = dgpo_ref.get_spec("dgpo").defaults["n"]
    pushes = {m: M.push_on_logit(m, p, p_old, adv) for m in ("cispo", "gppo", "dgpo", "grpo")}
    assert pushes["cispo"] == pytest.approx(-(1 - eps) * (1 - p), rel=1e-9)
    assert pushes["gppo"] == pytest.approx(pushes["cispo"], rel=1e-12)
    assert pushes["dgpo"] == pytest.approx(-(r ** (n + 1)) / (1 - eps) ** n * (1 - p), rel=1e-9)
    assert pushes["grpo"] == 0.0
    # halving π halves r: DGPO's push falls by 2^(n+1), CISPO's stays
    half = M.push_on_logit("dgpo", p / 2, p_old, adv)
    assert pushes["dgpo"] / half == pytest.approx(2 ** (n + 1) * (1 - p) / (1 - p / 2), rel=1e-9)
    assert M.push_on_logit("cispo", p / 2, p_old, adv) == pytest.approx(pushes["cispo"], rel=1e-4)


def test_recorded_push_smaller_for_dgpo_at_small_p(stale_runs):
    dg, ci = stale_runs["dgpo"], stale_runs["cispo"]
    key = "ln_push_per_adv_by_r"
    mean = {m: rec.push_sum[key] / np.maximum(rec.push_count[key], 1) for m, rec in (("dgpo", dg), ("cispo", ci))}
    both = np.flatnonzero((dg.push_count[key] > 0) & (ci.push_count[key] > 0))
    assert both.size >= 3
    edges = M.HISTOGRAMS[key].edges
    low = both[0]  # the smallest-r bin where both have LN tokens
    assert edges[low] < -0.5  # LN tokens with r well under 1 - eps_low exist
    assert mean["dgpo"][low] < 0.5 * mean["cispo"][low]
    # per unit advantage CISPO's push is (1 - eps_low)(1 - π) in every bin: bounded, not decaying with r
    assert np.all((mean["cispo"][both] > 0.8 * 0.5) & (mean["cispo"][both] < 0.8))
    assert mean["cispo"][both[-1]] < 0.8 * 0.97  # the (1 - π) of the token's own softmax is in it
    assert mean["dgpo"][both[0]] < mean["dgpo"][both[-1]]
    # the per-update mean push on LN tokens is negative (logits go down) wherever it is recorded
    pushes = ci.series["ln_push_mean"]
    assert np.nanmax(pushes) < 0


def test_soft_clipping_keeps_pushing_a_logit_after_it_enters_ln(stale_runs):
    """The paper's picture on the logits: 10 updates after a token first lands in LN, CISPO has pushed
    its logit down much further than DGPO (whose push there decays like r^(n+1))."""
    drop = {m: np.nanmean(rec.after["logit"][10]) for m, rec in stale_runs.items()}
    assert drop["cispo"] < drop["dgpo"] - 0.5 and drop["dgpo"] < 0


def test_after_entry_follows_each_token_from_its_first_ln_update():
    s = M.Setting(prompts=1, vocab=2, length=1, correct=1, group=2, steps=3, staleness=0)
    rec = M.Recorder(s, seeds=2)
    rec.tables["logit"] = [np.array(v, dtype=np.float32).reshape(2, 1, 1, 2)
                           for v in ([0, 0, 0, 0], [1, 0, 5, 0], [3, 0, 6, 2], [4, 0, 9, 7])]
    rec.first_ln[:] = [[[[1, -1]]], [[[0, 2]]]]  # seed 0: token 0 at update 1; seed 1: token 0 at 0, token 1 at 2
    out = rec.after_entry("logit", 2)
    np.testing.assert_array_equal(out[:, 0], [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(out[:, 1], [0.0, (5 + 5) / 2, 6.0])  # j = 2: only token 0 has 2 more updates


def test_deterministic_by_seed_and_independent_of_the_other_seeds():
    s = M.Setting(**{**TINY.__dict__, "steps": 15})
    alone = M.run_method("dgpo", s, [3]).series
    again = M.run_method("dgpo", s, [3]).series
    batch = M.run_method("dgpo", s, [1, 3, 5]).series
    other = M.run_method("dgpo", s, [4]).series
    for key in ("reward", "entropy", "min_logp", "ln_frac"):
        np.testing.assert_array_equal(alone[key], again[key])
        np.testing.assert_allclose(batch[key][:, 1:2], alone[key], rtol=1e-12, atol=1e-15)
    assert not np.allclose(other["min_logp"], alone["min_logp"])


def test_bootstrap_interval():
    assert M.bootstrap([2.0] * 5) == {"mean": 2.0, "ci95": [2.0, 2.0], "n": 5}
    b = M.bootstrap([0.0, 1.0, float("nan"), 2.0, 3.0])
    assert b["n"] == 4 and b["mean"] == 1.5 and b["ci95"][0] < 1.5 < b["ci95"][1]
    assert M.bootstrap([float("nan")])["mean"] is None


def test_main_writes_json_and_plots(tmp_path):
    argv = ["--methods", "dgpo,cispo", "--seeds", "3", "--steps", "12", "--prompts", "4", "--vocab", "8",
            "--length", "1", "--correct", "2", "--group", "4", "--lr", "20", "--out", str(tmp_path),
            "--name", "tiny"]
    assert M.main(argv) == 0
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert list(data["methods"]) == ["dgpo", "cispo"] and data["n_seeds"] == 3
    assert data["setting"]["steps"] == 12 and data["command"].endswith("--name tiny")
    row = data["methods"]["dgpo"]
    lo, hi = row["final_reward"]["ci95"]
    assert lo <= row["final_reward"]["mean"] <= hi and row["final_reward"]["n"] == 3
    assert len(row["curves"]["reward"]) == 13 and "dgpo-cispo" in data["paired_dgpo_minus"]
    for suffix in ("curves", "push"):
        assert (tmp_path / f"tiny_{suffix}.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, word", [
    (["--staleness", "-1"], "staleness"),
    (["--minibatches", "3"], "minibatches"),
    (["--methods", "dgpo,ppo"], "--methods"),
    (["--correct", "32"], "correct"),
    (["--lr", "nan"], "lr"),
    (["--optimizer", "lion"], "optimizer"),
    (["--seeds", "0"], "--seeds"),
    (["--name", "../x"], "--name"),
    (["--init-std", "inf"], "--init-std"),
    (["--seeds", "5000", "--steps", "3000"], "GiB"),
])
def test_bad_settings_name_the_parameter(argv, word, tmp_path):
    with pytest.raises(CliError, match=word):
        M.main([*argv, "--out", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_bad_flag_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.mechanism", "--staleness", "-2", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "staleness" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(CliError, match="--out"):
        M.main(["--out", str(tmp_path / "missing")])


def test_adam_step_is_adam_per_element():
    """First Adam step moves each element by lr·g/(|g| + eps), whatever the other elements' gradients."""
    theta = torch.zeros(2, 3, dtype=torch.float64)
    grad = torch.tensor([[1e-9, -2.0, 3e4], [0.5, -1e-3, 7.0]], dtype=torch.float64)
    M.adam_step(theta, grad, state := {}, 0.3)
    assert torch.allclose(theta, -0.3 * grad / (grad.abs() + 1e-8), rtol=1e-12, atol=0)
    before = theta.clone()
    M.adam_step(theta, torch.zeros_like(grad), state, 0.3)  # momentum keeps moving it the same way
    assert torch.all(torch.sign(theta - before) == torch.sign(-grad)) and state["t"] == 2
    sgd = torch.zeros(2, 3, dtype=torch.float64)
    M.sgd_step(sgd, grad, {}, 0.3)
    assert torch.equal(sgd, -0.3 * grad)


@pytest.mark.parametrize("name", ["mechanism", "mechanism_stale8", "mechanism_adam"])
def test_docs_tables_are_the_recorded_results(name):
    """docs/mechanism.md shows exactly the tables the run of record prints from its JSON (stale check)."""
    payload = json.loads((ROOT / "docs" / "results" / f"{name}.json").read_text())
    doc = (ROOT / "docs" / "mechanism.md").read_text()
    assert M.table(payload) in doc and M.paired_table(payload) in doc
    assert payload["n_seeds"] >= 50 and list(payload["methods"]) == list(dgpo_ref.LOSSES)
    assert f"{name}_" in doc  # the page points at the run's files
    for suffix in ("curves", "push"):
        assert (ROOT / "docs" / "results" / f"{name}_{suffix}.png").is_file()
