"""``dgpo compare``: the statistics on hand-made runs, and the whole command on the tiny model
(runs in parallel, paired by seed, a second call skips finished runs and resumes partial ones)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import compare


def _run_folder(d, accs, ln_hp=0.1):
    """A finished run as ``dgpo compare`` keeps it: its logs in the results folder ``d.parent``."""
    d.parent.mkdir(parents=True, exist_ok=True)
    compare.logged(d.parent, d, "eval.jsonl").write_text("".join(json.dumps({"step": 8 * i, "iteration": i, "test/avg@1": a, "val/avg@1": a})
                                          + "\n" for i, a in enumerate(accs)))
    compare.logged(d.parent, d, "metrics.jsonl").write_text("".join(json.dumps({"step": s, "iteration": (s + 7) // 8, "region/LN": ln_hp / 2,
                                                         "region/HP": ln_hp / 2, "entropy": 0.5})
                                             + "\n" for s in range(1, 8 * (len(accs) - 1) + 1)))


def test_run_statistics(tmp_path):
    _run_folder(tmp_path / "a", [0.1, 0.5, 0.3, 0.5])
    s = compare.run_stats(tmp_path / "a", tmp_path)
    assert s["final"] == 0.5 and s["collapsed"]  # 0.3 is 0.2 under the running maximum 0.5
    assert s["auc"] == pytest.approx((0.3 + 0.4 + 0.4) / 3)
    assert s["ln_hp"] == pytest.approx(0.1) and s["entropy_end"] == 0.5
    _run_folder(tmp_path / "b", [0.1, 0.5, 0.45, 0.6])
    assert not compare.run_stats(tmp_path / "b", tmp_path)["collapsed"]  # 0.05 under: within the threshold


def test_bootstrap_interval_and_pairing():
    xs = [0.30, 0.32, 0.35, 0.31, 0.29]
    lo, hi = compare.bootstrap_ci(xs)
    assert min(xs) <= lo < sum(xs) / len(xs) < hi <= max(xs)
    assert compare.bootstrap_ci(xs) == [lo, hi]  # reproducible
    wide = compare.bootstrap_ci([0.0, 1.0, 0.0, 1.0, 0.5])
    assert wide[1] - wide[0] > hi - lo
    p = compare.paired({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.5, 2: 0.65})
    assert p["per_seed"] == pytest.approx([0.1, 0.1, 0.05]) and p["seeds"] == [0, 1, 2]
    assert (p["ahead"], p["behind"]) == (3, 0)
    assert p["sign_flip_p"] == pytest.approx(2 / 8)  # all three ahead: only "all +" and "all -" are as extreme


def test_sign_flip_p_is_the_exact_randomization_p():
    assert compare.sign_flip_p([0.02, 0.03, 0.01, 0.04, 0.05]) == pytest.approx(2 / 32)  # the floor at five seeds
    # one of five behind (sum 0.13 of |d| total 0.15): a flip set F gives 0.15 - 2*sum_F |d|, as extreme when
    # sum_F |d| <= 0.01 ({}, {0.01}) or >= 0.14 (their complements): 4 of 32
    assert compare.sign_flip_p([0.02, 0.03, -0.01, 0.04, 0.05]) == pytest.approx(4 / 32)
    assert compare.sign_flip_p([0.1, -0.1]) == 1.0
    # many seeds: sampled, not 2^40 flips (finishes), and all-ahead is still as small as it can be
    many = compare.sign_flip_p([0.01] * 40)
    assert many == pytest.approx(1 / (2 ** compare.EXACT_SIGN_FLIPS + 1))
    assert compare.problem_table([1, 0, 1, 0], [0, 0, 1, 1]) == {"only_first_right": 1, "only_second_right": 1,
                                                                  "problems": 4}


def _compare(tmp_path, steps, *extra):
    return subprocess.run([sys.executable, "-m", "dgpo_cli", "compare", "--setting", "smoke", "--methods", "dgpo", "grpo",
                           "--seeds", "2", "--steps", str(steps), "--jobs", "2", "--output", str(tmp_path / "runs"),
                           "--results", str(tmp_path / "results"), *extra],
                          capture_output=True, text=True, timeout=600)


def test_compare_end_to_end_skips_and_resumes(tmp_path):
    first = _compare(tmp_path, 2, "--keep-checkpoints")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert (tmp_path / "runs" / "grpo_s0" / "checkpoint" / "trainer_state.pt").is_file()
    r = json.loads((tmp_path / "results" / "compare.json").read_text())
    assert r["seeds"] == [0, 1] and set(r["methods"]) == {"dgpo", "grpo"}
    for m in r["methods"].values():
        assert len(m["final"]["per_seed"]) == 2 and len(m["curves"]["0"]) == 3  # evaluated at steps 0, 1, 2
    assert r["paired"]["dgpo-grpo"]["problems_final"]["problems"] == 6 * 2  # 6 test problems, 2 seeds
    assert (tmp_path / "results" / "compare.png").stat().st_size > 5000
    assert (tmp_path / "results" / "compare" / "dgpo_s1_eval.jsonl").is_file()
    # seed 0's two runs evaluate the untrained model (in parallel); seed 1's read it from the shared cache
    assert len(list((tmp_path / "runs" / "eval_cache").glob("step0_*.json"))) == 1
    # and the kept copy, committed with the logs, which seeds a later session's run folders
    kept = list((tmp_path / "results" / "compare" / "eval_cache").glob("step0_*.json"))
    assert [f.name for f in kept] == [f.name for f in (tmp_path / "runs" / "eval_cache").glob("step0_*.json")]
    for m in ("dgpo", "grpo"):
        step0 = json.loads((tmp_path / "runs" / f"{m}_s1" / "eval.jsonl").read_text().splitlines()[0])
        assert step0["eval_cached"] is True
    again = _compare(tmp_path, 2)
    assert again.returncode == 0 and "4 of 4 runs already done" in again.stdout
    longer = _compare(tmp_path, 3)  # every run is partial now: resumed from its step-2 checkpoint
    assert longer.returncode == 0, longer.stdout[-2000:]
    assert longer.stdout.count("resume") == 4
    # without --keep-checkpoints a finished, logged run's checkpoint is deleted (GBs per run with SmolLM2)
    assert longer.stdout.count("deleted") == 4
    assert not list((tmp_path / "runs").glob("*/checkpoint"))
    evals = [json.loads(x) for x in (tmp_path / "runs" / "grpo_s0" / "eval.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in evals] == [0, 1, 2, 3]
    # a fresh machine: no run folders, only the logs kept in the results folder -> nothing re-runs
    import shutil

    shutil.rmtree(tmp_path / "runs")
    fresh = _compare(tmp_path, 3)
    assert fresh.returncode == 0 and "4 of 4 runs already done" in fresh.stdout
    assert json.loads((tmp_path / "results" / "compare.json").read_text())["steps"] == 3


def test_the_kept_step0_evaluation_seeds_a_new_run_folder(tmp_path):
    """Entries are copied where missing, never over an existing one (a run folder's own evaluation stays)."""
    kept, runs = tmp_path / "results" / "eval_cache", tmp_path / "runs" / "eval_cache"
    kept.mkdir(parents=True)
    (kept / "step0_a.json").write_text("kept a")
    (kept / "step0_b.json").write_text("kept b")
    runs.mkdir(parents=True)
    (runs / "step0_b.json").write_text("own b")
    compare.share_eval_cache(kept, runs)
    assert (runs / "step0_a.json").read_text() == "kept a" and (runs / "step0_b.json").read_text() == "own b"
    compare.share_eval_cache(tmp_path / "missing", runs)  # nothing kept yet: nothing happens
    assert sorted(f.name for f in runs.iterdir()) == ["step0_a.json", "step0_b.json"]


@pytest.mark.parametrize("args, message", [
    (["--methods", "dgpo", "nope"], "unknown loss 'nope'"),
    (["--seeds", "1"], "--seeds must be >= 2"),
    (["--lr", "dgpo"], "not a number"),
    (["--set", "staleness=-1"], "staleness must be an integer >= 0"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    import dgpo_cli

    assert dgpo_cli.main(["compare", "--setting", "smoke", "--output", str(tmp_path / "r"),
                          "--results", str(tmp_path / "res"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "res").exists()


def test_ln_hp_over_sampled_tokens_when_groups_are_filtered(tmp_path):
    """With ``filter_groups`` the region fractions are over trained tokens; ``ln_hp_sampled`` rescales
    them by the share of the sampled tokens the batch trained on."""
    d = tmp_path / "r"
    compare.logged(tmp_path, d, "config.json").write_text(json.dumps({"group_size": 4}))
    # one iteration: 2 epochs x 2 mini-batches of 30 trained tokens; 24 sequences of mean length 5 sampled
    rows = [{"iteration": 1, "epoch": e, "tokens": 30.0, "region/LN": 0.1, "region/HP": 0.1,
             "response_length/mean": 5.0, "groups/sampled": 6.0} for e in (0, 0, 1, 1)]
    assert compare._ln_hp_sampled(rows, d, tmp_path) == pytest.approx(0.2 * 60 / 120)
    plain = [{k: v for k, v in r.items() if k != "groups/sampled"} for r in rows]
    assert compare._ln_hp_sampled(plain, d, tmp_path) == pytest.approx(0.2)


def test_a_setting_with_two_test_splits_reports_both(tmp_path):
    """mathematics: interpolation is the split of record, extrapolation comes alongside, paired too."""
    root, dest = tmp_path / "runs", tmp_path / "results"
    for m, base in (("dgpo", 0.3), ("grpo", 0.2)):
        for s in (0, 1):
            d = compare.run_dir(root, m, s, None)
            dest.mkdir(parents=True, exist_ok=True)
            compare.logged(dest, d, "eval.jsonl").write_text("".join(
                json.dumps({"step": 8 * i, "iteration": i, "interpolation/avg@1": base + 0.1 * i + 0.01 * s,
                            "extrapolation/avg@1": base / 2 + 0.01 * i}) + "\n" for i in range(3)))
            compare.logged(dest, d, "metrics.jsonl").write_text("".join(
                json.dumps({"step": k, "iteration": (k + 7) // 8, "region/LN": 0.05, "region/HP": 0.05,
                            "entropy": 0.4}) + "\n" for k in range(1, 17)))
    r = compare.report(root, dest, ["dgpo", "grpo"], [0, 1], {"dgpo": None, "grpo": None}, "mathematics", [], 2, "dgpo")
    assert r["split"] == "interpolation"
    assert r["methods"]["dgpo"]["final"]["per_seed"] == pytest.approx([0.5, 0.51])
    assert r["paired"]["dgpo-grpo"]["final"]["mean"] == pytest.approx(0.1)
    extra = r["other_splits"]["extrapolation"]
    assert extra["methods"]["grpo"]["final"]["per_seed"] == pytest.approx([0.12, 0.12])
    assert extra["paired"]["dgpo-grpo"]["final"]["mean"] == pytest.approx(0.05)
    compare.print_report(r)  # renders the extra split without error


def test_evidence_quotes_the_comparison_of_record():
    """docs/evidence.md's tables of the runs of record are docs/results/compare.json, rounded."""
    root = Path(__file__).resolve().parents[1]
    r = json.loads((root / "docs" / "results" / "compare.json").read_text())
    doc = (root / "docs" / "evidence.md").read_text()

    def pct(x, signed=False):
        text = f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"
        return text.replace("-", "\u2212") if signed else text

    def cell(s, signed=False):
        lo, hi = s["ci95"]
        return f"{pct(s['mean'], signed)} [{pct(lo, signed)}, {pct(hi, signed)}]"

    assert len(r["seeds"]) >= 5
    for m, s in r["methods"].items():
        assert f"| {cell(s['final'])} | {cell(s['auc'])} | {cell(s['ln_hp'])} | {cell(s['ln_hp_sampled'])} |" in doc, m
        assert f"| {s['collapsed_runs']} of {len(r['seeds'])} |" in doc
    for name, p in r["paired"].items():
        n, q = len(p["final"]["seeds"]), p["problems_final"]
        per_seed = f"{q['problems'] // n:,}".replace(",", " ")
        row = (f"| {cell(p['final'], True)} | {p['final']['ahead']} of {n} seeds | {p['final']['sign_flip_p']:.3f} | "
               f"{cell(p['auc'], True)} | {p['auc']['ahead']} of {n} | {p['auc']['sign_flip_p']:.3f} | "
               f"{q['only_first_right']} / {q['only_second_right']} (of {n} \u00d7 {per_seed}) |")
        assert row in doc, f"{name}: {row}"
