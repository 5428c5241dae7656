"""``dgpo compare``: methods × seeds, paired by seed, with bootstrap intervals (docs/evidence.md).

Every run is one ``dgpo train`` process on the same setting and the same budget of optimizer steps
(not wall clock, so that runs sharing a machine stay comparable); a method and its rival with the
same seed see the same training problems in the same order and are scored on the same validation and
test problems (a built-in task's held-out splits do not depend on the seed; a ``mathematics:*``
task draws them per seed, so each seed's runs share theirs). Runs go ``--jobs`` at a time, each
with an equal share of the CPU threads. The command is resumable: a finished run is skipped, a
partial one continues from its last checkpoint, so a comparison can span several sessions. A finished
run's logs (config, eval.jsonl, metrics.jsonl, the final per-problem test rewards) are copied into
``docs/results/<name>/`` as soon as it ends: the report reads only those, and a later session on a
fresh machine skips every run logged there. Its checkpoint (about 3 GB for SmolLM2 with staleness:
weights, optimizer state, the sampler's stale weights) is then deleted, unless ``--keep-checkpoints``
(needed only to extend finished runs to more ``--steps`` later; without it they start over).

Per run it reads, from eval.jsonl and metrics.jsonl: the test accuracy at the end, the area under
the test-accuracy curve (the mean accuracy over the run, trapezoids over optimizer steps), the mean
LN + HP token fraction, the entropy at the end, and whether the run collapsed (a test accuracy more
than ``COLLAPSE`` under its own running maximum). Per method it reports mean ± 95 % percentile
bootstrap interval over seeds, and for each rival X the paired difference DGPO − X (per seed) with
its interval, and the problem-by-problem count of final test answers one method got right and the
other wrong. Learning rates are tuned per method on the *validation* split with ``--tune`` on
seeds of their own (``TUNE_SEEDS``), never on the reported seeds or the test split.

    dgpo compare [--methods dgpo grpo cispo] [--seeds 5] [--steps 30] [--jobs 2] [--tune 5e-6 1e-5 2e-5]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from clikit import ArgumentParser, CliError
from trainer.plot import read_jsonl  # torn last lines (a killed run) are skipped with a warning

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
COLLAPSE = 0.10
"""A run collapsed when its test accuracy falls this far (absolute) under its own running maximum."""
TUNE_SEEDS = (1000,)
"""Seeds of the learning-rate search: disjoint from the reported seeds 0, 1, 2, ... (one seed: on the
2-core CPU a tuning run costs about as much as a reported one)."""

SETTINGS: dict[str, list[str]] = {
    # Off-policy by design, as asynchronous RL pipelines run: the sampler is 2 steps behind the
    # learner and π_old is the sampler's own log-probs, and each rollout batch of 8 × 8 is used for
    # 4 mini-batches × 2 epochs (8 optimizer steps). Dynamic sampling (DAPO) keeps equal-reward groups
    # (advantage 0: no gradient under any of the losses) out of the batch, up to 4 rounds of 8 prompts:
    # without it, at arith-mixed's low starting reward most tokens have advantage 0 and LN + HP held
    # 2.5-2.9 % of tokens over 30 steps (staleness 4 did not change that; docs/evidence.md). A
    # constant learning rate (the method's own, tuned), the hf sampler (one thread per run), 1 000
    # test problems every 10 steps.
    "offpolicy": ["task=arith-mixed", "backend=hf", "prompts_per_step=8", "group_size=8", "mini_batches=4",
                  "epochs=2", "micro_batch_size=16", "staleness=2", "old_logprobs=sampler", "min_lr_ratio=1",
                  "warmup_steps=8", "filter_groups=true", "max_sample_rounds=4", "eval_every=10", "eval_size=256",
                  "test_size=1000"],
    # the same machinery on the tiny random model, for tests (seconds per run)
    "smoke": ["model=tiny-llama", "backend=hf", "task=add2", "chat_template=false", "prompts_per_step=2",
              "group_size=4", "mini_batches=2", "max_new_tokens=4", "micro_batch_size=8", "staleness=1",
              "old_logprobs=sampler", "lr=1e-3", "eval_every=1", "eval_size=4", "test_size=6"],
    # DeepMind's mathematics_dataset (issue 18): the default trainer on arithmetic with the task's own
    # length, wording and reward (trainer/mathematics.py, RECOMMENDED), 8 prompts × 8 per step;
    # reported on the interpolation split, extrapolation alongside.
    "mathematics": ["task=mathematics:arithmetic", "backend=hf", "prompts_per_step=8", "micro_batch_size=16",
                    "eval_every=5", "eval_size=128", "test_size=256"],
}
"""Setting name -> ``--set`` overrides on top of the trainer's defaults."""

REPORTED: dict[str, tuple[str, ...]] = {"mathematics": ("interpolation", "extrapolation")}
"""Setting -> its held-out test splits, the first one the split of record (default: ``test``)."""


def reported_splits(setting: str) -> tuple[str, ...]:
    return REPORTED.get(setting, ("test",))


# --- running -----------------------------------------------------------------------------------------
def run_dir(root: Path, method: str, seed: int, lr: float | None) -> Path:
    return root / (f"{method}_lr{lr:g}_s{seed}" if lr is not None else f"{method}_s{seed}")


LOGS = ("config.json", "eval.jsonl", "metrics.jsonl")


def logged(dest: Path, d: Path, name: str) -> Path:
    """The copy of run ``d``'s file ``name`` kept in the results folder ``dest``."""
    return dest / f"{d.name}_{name}"


def finished(evals: list[dict], steps: int) -> bool:
    return bool(evals) and evals[-1].get("iteration") == steps


def keep_logs(d: Path, dest: Path) -> None:
    """Copy a finished run's logs and its final per-problem test rewards into ``dest`` (committed: a
    later session on a fresh machine skips the run, and every reported number has its log)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in LOGS:
        shutil.copy(d / f, logged(dest, d, f))
    for split in sorted({f.name.rsplit("_step", 1)[0] for f in (d / "eval_problems").glob("*_step*.jsonl")}):
        files = sorted((d / "eval_problems").glob(f"{split}_step*.jsonl"))
        if files:
            rewards = [_mean(r["rewards"]) for r in read_jsonl(files[-1])]
            logged(dest, d, f"{split}_final.json").write_text(json.dumps({"file": files[-1].name, "rewards": rewards}))
    share_eval_cache(d.parent / "eval_cache", dest / "eval_cache")


def share_eval_cache(src: Path, dst: Path) -> None:
    """Copy the untrained model's evaluations (``eval_cache`` entries) that ``dst`` lacks from ``src``.

    The kept copy (``dest/eval_cache``, committed with the logs) seeds every later session's run
    folder, so that runs of record made in different sessions start from one and the same step-0
    evaluation: greedy decoding on the CPU has been seen to flip an answer between two sessions
    (31 vs 32 of 256 validation problems right), which would otherwise move a run's curve by the
    machine it ran on rather than by its loss.
    """
    if not src.is_dir():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*.json")):
        if not (dst / f.name).exists():
            shutil.copy(f, dst / f.name)


def status(d: Path, steps: int, dest: Path) -> str:
    """``done`` (its logs, ending with the final evaluation, are in ``dest``), ``partial`` (a checkpoint
    to resume from) or ``new``. A run finished in ``d`` but not yet logged is logged now."""
    if finished(read_jsonl(logged(dest, d, "eval.jsonl")), steps):
        return "done"
    if finished(read_jsonl(d / "eval.jsonl"), steps) and (d / "checkpoint" / "trainer_state.pt").is_file():
        keep_logs(d, dest)
        return "done"
    return "partial" if (d / "checkpoint" / "trainer_state.pt").is_file() else "new"


def command(d: Path, sets: list[str], resume: bool) -> list[str]:
    """The ``dgpo train`` command of one run. Runs of one folder share ``eval_cache`` (the untrained
    model's evaluation, identical for every method and seed) unless ``sets`` chooses another."""
    base = [sys.executable, "-m", "dgpo_cli", "train", "--output", str(d)]
    flags = ["--resume"] if resume else ["--overwrite"]
    if not any(s.startswith("eval_cache=") for s in sets):
        sets = [*sets, f"eval_cache={d.parent / 'eval_cache'}"]
    return base + flags + [x for s in sets for x in ("--set", s)]


def drop_checkpoint(d: Path) -> None:
    """Delete a finished and logged run's checkpoint (its logs in ``dest`` are the record)."""
    ckpt = d / "checkpoint"
    if ckpt.is_dir():
        size = sum(f.stat().st_size for f in ckpt.rglob("*") if f.is_file())
        shutil.rmtree(ckpt)
        print(f"[compare] deleted {ckpt} ({size / 2**30:.1f} GiB; --keep-checkpoints keeps it)", flush=True)


def run_all(jobs: list[tuple[Path, list[str]]], steps: int, parallel: int, dest: Path,
            keep_checkpoints: bool = False) -> None:
    """Run (folder, sets) jobs ``parallel`` at a time; skip finished ones, resume partial ones; each
    finished run's logs go to ``dest`` as soon as it ends, and its checkpoint is deleted unless
    ``keep_checkpoints``."""
    todo = [(d, s) for d, s in jobs if status(d, steps, dest) != "done"]
    for folder in sorted({d.parent for d, _ in todo}):  # the kept step-0 evaluations first
        share_eval_cache(dest / "eval_cache", folder / "eval_cache")
    print(f"[compare] {len(jobs) - len(todo)} of {len(jobs)} runs already done; {len(todo)} to run, {parallel} at a time",
          flush=True)
    threads = max(1, (os.cpu_count() or 1) // parallel)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running: list[tuple[subprocess.Popen, Path, float]] = []
    failed = []
    while todo or running:
        while todo and len(running) < parallel:
            d, sets = todo.pop(0)
            resume = status(d, steps, dest) == "partial"
            d.mkdir(parents=True, exist_ok=True)
            log = (d / "train.log").open("a")
            running.append((subprocess.Popen(command(d, sets, resume), env=env, stdout=log, stderr=subprocess.STDOUT),
                            d, time.time()))
            print(f"[compare] {'resume' if resume else 'start '} {d.name}", flush=True)
        time.sleep(2)
        for p, d, t in list(running):
            if p.poll() is not None:
                running.remove((p, d, t))
                print(f"[compare] {'done  ' if p.returncode == 0 else 'FAILED'} {d.name} "
                      f"({(time.time() - t) / 60:.1f} min; rc {p.returncode})", flush=True)
                if p.returncode:
                    failed.append(d)
                else:
                    keep_logs(d, dest)
                    if not keep_checkpoints:
                        drop_checkpoint(d)
    if failed:
        raise CliError(f"{len(failed)} run(s) failed; see their train.log: " + ", ".join(str(d) for d in failed))


# --- reading a run -----------------------------------------------------------------------------------
def auc(xs: list[float], ys: list[float]) -> float:
    """Mean of y over [x0, xn] by trapezoids (the area under the curve over its span)."""
    if len(xs) < 2:
        return ys[0] if ys else float("nan")
    area = sum((x1 - x0) * (y0 + y1) / 2 for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:]))
    return area / (xs[-1] - xs[0])


def run_stats(d: Path, dest: Path, split: str = "test") -> dict:
    """The statistics of run ``d`` from its logs kept in ``dest``."""
    evals, rows = read_jsonl(logged(dest, d, "eval.jsonl")), read_jsonl(logged(dest, d, "metrics.jsonl"))
    if not evals or not rows:
        raise CliError(f"{logged(dest, d, 'eval.jsonl')}: no finished run logged (run without --report-only)")
    key = f"{split}/avg@1"
    acc = [e[key] for e in evals]
    running_max = [max(acc[: i + 1]) for i in range(len(acc))]
    last_iter = rows[-1]["iteration"]
    return {
        "final": acc[-1],
        "auc": auc([e["step"] for e in evals], acc),
        "curve": [[e["step"], a] for e, a in zip(evals, acc)],
        "ln_hp": sum(r["region/LN"] + r["region/HP"] for r in rows) / len(rows),
        "ln_hp_sampled": _ln_hp_sampled(rows, d, dest),
        "grad_share_ln_hp": sum(r.get("grad_share/LN", 0.0) + r.get("grad_share/HP", 0.0) for r in rows) / len(rows),
        "grad_cos": sum(r.get("grad_cos/dgpo_grpo", float("nan")) for r in rows) / len(rows),
        "entropy_end": _mean([r["entropy"] for r in rows if r["iteration"] == last_iter]),
        "collapsed": any(a < m - COLLAPSE for a, m in zip(acc, running_max)),
        "steps": rows[-1]["step"],
    }


def _ln_hp_sampled(rows: list[dict], d: Path, dest: Path) -> float:
    """LN + HP as a fraction of every *sampled* token rather than of the trained ones: the same as
    ``ln_hp`` unless ``filter_groups`` left equal-reward groups out of the batch. Per optimizer step,
    the region fraction times the share of the step's sampled tokens that its batch trains on (the
    first epoch's mini-batch token counts over ``response_length/mean`` × sampled sequences)."""
    if not any("groups/sampled" in r for r in rows):
        return sum(r["region/LN"] + r["region/HP"] for r in rows) / len(rows)
    group_size = json.loads(logged(dest, d, "config.json").read_text())["group_size"]
    trained: dict[int, float] = {}
    for r in rows:
        if r.get("epoch", 0) == 0:
            trained[r["iteration"]] = trained.get(r["iteration"], 0.0) + r["tokens"]
    share = {r["iteration"]: trained[r["iteration"]] / (r["response_length/mean"] * r["groups/sampled"] * group_size)
             for r in rows}
    return sum((r["region/LN"] + r["region/HP"]) * share[r["iteration"]] for r in rows) / len(rows)


def final_problems(d: Path, dest: Path, split: str = "test") -> list[float] | None:
    """The last evaluation's per-problem rewards (mean over samples), in problem-id order."""
    path = logged(dest, d, f"{split}_final.json")
    return json.loads(path.read_text())["rewards"] if path.is_file() else None


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


# --- statistics --------------------------------------------------------------------------------------
def bootstrap_ci(xs: list[float], n: int = 10_000, level: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of the mean of ``xs`` (fixed resampling seed: reproducible)."""
    if len(xs) < 2:
        return [float("nan"), float("nan")]
    rng = random.Random(seed)
    means = sorted(_mean([rng.choice(xs) for _ in xs]) for _ in range(n))
    lo = means[int((1 - level) / 2 * n)]
    hi = means[min(n - 1, int((1 + level) / 2 * n))]
    return [lo, hi]


def summarize(values: list[float]) -> dict:
    return {"mean": _mean(values), "ci95": bootstrap_ci(values), "per_seed": values}


def sign_flip_p(ds: list[float]) -> float:
    """Two-sided p of the paired randomization (sign-flip) test, exact up to EXACT_SIGN_FLIPS pairs: the share of the 2^n ways of
    flipping the differences' signs whose mean is at least as far from 0 as the observed one. With n
    pairs it is never below 2/2^n (0.0625 at n = 5): five seeds cannot reach p < 0.05 on their own."""
    n = len(ds)
    if n == 0:
        return float("nan")
    observed = abs(sum(ds)) - 1e-12 * max(1.0, sum(abs(d) for d in ds))  # ties count as "as far"
    if n <= EXACT_SIGN_FLIPS:
        masks = range(2 ** n)
    else:  # 2^n flips would not finish: a fixed-seed Monte-Carlo sample of them (p >= 1/(samples+1))
        rng = random.Random(0)
        masks = [rng.getrandbits(n) for _ in range(2 ** EXACT_SIGN_FLIPS)]
    hits = sum(abs(sum(d if (mask >> i) & 1 else -d for i, d in enumerate(ds))) >= observed for mask in masks)
    return hits / 2 ** n if n <= EXACT_SIGN_FLIPS else (hits + 1) / (len(masks) + 1)


#: up to this many seeds the sign-flip p enumerates every flip; beyond, it samples 2^this many
EXACT_SIGN_FLIPS = 14


def paired(a: dict[int, float], b: dict[int, float]) -> dict:
    """The per-seed differences a - b: mean, bootstrap interval, in how many seeds a was ahead / behind,
    and the exact sign-flip p (percentile-bootstrap intervals are too narrow with a handful of seeds)."""
    seeds = sorted(set(a) & set(b))
    ds = [a[s] - b[s] for s in seeds]
    return {"seeds": seeds, **summarize(ds), "ahead": sum(d > 0 for d in ds), "behind": sum(d < 0 for d in ds),
            "sign_flip_p": sign_flip_p(ds)}


def problem_table(da: list[float] | None, db: list[float] | None) -> dict | None:
    if da is None or db is None or len(da) != len(db):
        return None
    return {"only_first_right": sum(x >= 1 > y for x, y in zip(da, db)),
            "only_second_right": sum(y >= 1 > x for x, y in zip(da, db)), "problems": len(da)}


# --- the report --------------------------------------------------------------------------------------
METRICS = ("final", "auc", "ln_hp", "ln_hp_sampled", "grad_share_ln_hp", "entropy_end")


def report(root: Path, dest: Path, methods: list[str], seeds: list[int], lrs: dict[str, float | None], setting: str,
           sets: list[str], steps: int, reference: str) -> dict:
    """The statistics of record on the setting's first test split; its other test splits (e.g.
    mathematics' extrapolation) get the end and AUC accuracies and their paired differences under
    ``other_splits``."""
    split, *others = reported_splits(setting)
    stats = {m: {s: run_stats(run_dir(root, m, s, lrs[m]), dest, split) for s in seeds} for m in methods}
    out = {"setting": setting, "sets": sets, "steps": steps, "seeds": seeds, "learning_rates": lrs, "split": split,
           "collapse_threshold": COLLAPSE, "methods": {}, "paired": {}}
    for m in methods:
        out["methods"][m] = {k: summarize([stats[m][s][k] for s in seeds]) for k in METRICS}
        out["methods"][m]["collapsed_runs"] = sum(stats[m][s]["collapsed"] for s in seeds)
        out["methods"][m]["curves"] = {str(s): stats[m][s]["curve"] for s in seeds}
    out["paired"] = _pairs(root, dest, methods, seeds, lrs, reference, stats, split)
    if others:
        out["other_splits"] = {}
        for o in others:
            st = {m: {s: run_stats(run_dir(root, m, s, lrs[m]), dest, o) for s in seeds} for m in methods}
            out["other_splits"][o] = {
                "methods": {m: {k: summarize([st[m][s][k] for s in seeds]) for k in ("final", "auc")} for m in methods},
                "paired": _pairs(root, dest, methods, seeds, lrs, reference, st, o)}
    return out


def _pairs(root: Path, dest: Path, methods: list[str], seeds: list[int], lrs: dict[str, float | None], reference: str,
           stats: dict, split: str) -> dict:
    out = {}
    for x in methods:
        if x == reference:
            continue
        pair = {k: paired({s: stats[reference][s][k] for s in seeds}, {s: stats[x][s][k] for s in seeds})
                for k in ("final", "auc")}
        tables = [problem_table(final_problems(run_dir(root, reference, s, lrs[reference]), dest, split),
                                final_problems(run_dir(root, x, s, lrs[x]), dest, split)) for s in seeds]
        if all(tables):
            pair["problems_final"] = {k: sum(t[k] for t in tables) for k in tables[0]}
        out[f"{reference}-{x}"] = pair
    return out


def print_report(r: dict) -> None:
    def cell(s: dict, scale: float = 100) -> str:
        lo, hi = s["ci95"]
        return f"{scale * s['mean']:6.1f} [{scale * lo:5.1f}, {scale * hi:5.1f}]"

    split = r.get("split", "test")
    print(f"\nsetting {r['setting']}, {r['steps']} steps, seeds {r['seeds']}, split {split}  "
          "(mean [95 % bootstrap CI], %)")
    print(f"{'method':<8}{split + ' acc (end)':>26}{split + ' acc AUC':>26}{'LN+HP of trained tokens':>26}"
          f"{'LN+HP of sampled':>26}{'collapsed':>11}")
    for m, s in r["methods"].items():
        sampled = cell(s["ln_hp_sampled"]) if "ln_hp_sampled" in s else "-"
        print(f"{m:<8}{cell(s['final']):>26}{cell(s['auc']):>26}{cell(s['ln_hp']):>26}{sampled:>26}"
              f"{s['collapsed_runs']:>6} of {len(r['seeds'])}")
    for name, p in r["paired"].items():
        extra = ""
        if "problems_final" in p:
            q = p["problems_final"]
            extra = f"; problems right only with the first / only the second: {q['only_first_right']} / {q['only_second_right']}"
        counts = "".join(f"; {k} ahead in {p[k]['ahead']} of {len(p[k]['seeds'])} seeds, sign-flip p {p[k]['sign_flip_p']:.3f}"
                         for k in ("final", "auc") if "ahead" in p[k])
        print(f"paired {name}: end {cell(p['final'])}, AUC {cell(p['auc'])} points{counts}{extra}")
    for o, sub in r.get("other_splits", {}).items():
        for m, s in sub["methods"].items():
            print(f"{o}: {m:<8} end {cell(s['final'])}, AUC {cell(s['auc'])}")
        for name, p in sub["paired"].items():
            print(f"{o}: paired {name}: end {cell(p['final'])}, AUC {cell(p['auc'])} points")


def plot(r: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(21, 4.2))
    for m, s in r["methods"].items():
        curves = list(s["curves"].values())
        steps = [x for x, _ in curves[0]]
        n = min(len(c) for c in curves)
        mean = [_mean([c[i][1] for c in curves]) for i in range(n)]
        line, = axes[0].plot(steps[:n], mean, marker="o", label=m)
        for c in curves:
            axes[0].plot([x for x, _ in c], [y for _, y in c], color=line.get_color(), alpha=0.2, lw=0.8)
    split = r.get("split", "test")
    axes[0].set(title=f"{split} accuracy (mean, and each seed)", xlabel="optimizer step")
    methods = list(r["methods"])
    for ax, key, title in ((axes[1], "final", f"{split} accuracy at the end"), (axes[2], "ln_hp", "LN + HP token fraction")):
        for i, m in enumerate(methods):
            s = r["methods"][m][key]
            ax.errorbar([i], [s["mean"]], yerr=[[s["mean"] - s["ci95"][0]], [s["ci95"][1] - s["mean"]]], fmt="o",
                        capsize=4)
            ax.scatter([i] * len(s["per_seed"]), s["per_seed"], s=8, alpha=0.5)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_title(f"{title} (95 % bootstrap CI)")
    pairs = list(r["paired"])
    for i, name in enumerate(pairs):
        for j, key in enumerate(("final", "auc")):
            d = r["paired"][name][key]
            x = i + (j - 0.5) * 0.3
            axes[3].errorbar([x], [d["mean"]], yerr=[[d["mean"] - d["ci95"][0]], [d["ci95"][1] - d["mean"]]], fmt="os"[j],
                             capsize=4, color=f"C{j}", label=("end" if j == 0 else "AUC") if i == 0 else None)
            axes[3].scatter([x] * len(d["per_seed"]), d["per_seed"], s=8, alpha=0.5, color=f"C{j}")
    axes[3].axhline(0, color="grey", lw=0.8)
    axes[3].set_xticks(range(len(pairs)), pairs)
    axes[3].set_title(f"paired difference of {split} accuracy (95 % bootstrap CI)")
    axes[3].legend()
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


# --- learning-rate search ------------------------------------------------------------------------------
def tune(root: Path, dest: Path, methods: list[str], grid: list[float], sets: list[str], steps: int,
         parallel: int, keep_checkpoints: bool = False) -> dict:
    """Per method, the learning rate of ``grid`` with the best mean *validation* AUC over ``TUNE_SEEDS``."""
    jobs = [(run_dir(root, m, s, lr), [*sets, f"loss={m}", f"seed={s}", f"lr={lr}", f"steps={steps}", "test_size=0",
                                       "eval_every=5", "progress=false", "save_every=2"])
            for s in TUNE_SEEDS for lr in grid for m in methods]
    run_all(jobs, steps, parallel, dest, keep_checkpoints)
    table = {m: {str(lr): _mean([run_stats(run_dir(root, m, s, lr), dest, "val")["auc"] for s in TUNE_SEEDS])
                 for lr in grid} for m in methods}
    best = {m: float(max(t, key=t.get)) for m, t in table.items()}
    return {"grid": grid, "seeds": list(TUNE_SEEDS), "steps": steps, "val_auc": table, "best": best}


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="dgpo compare", description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["dgpo", "grpo", "cispo"])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    ap.add_argument("--setting", default="offpolicy", choices=list(SETTINGS))
    ap.add_argument("--steps", type=int, default=30, help="rollout steps per run (the budget; default 30)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2: one per core here)")
    ap.add_argument("--output", default="runs/compare", help="folder of the runs (default runs/compare)")
    ap.add_argument("--name", default="compare", help="result files docs/results/NAME.json/.png (default compare)")
    ap.add_argument("--tune", nargs="*", type=float, default=None, metavar="LR",
                    help="first search these learning rates per method on the validation split (seeds "
                         f"{TUNE_SEEDS}), then compare with the best; without values: reuse NAME_tuning.json")
    ap.add_argument("--tune-steps", type=int, default=None, help="steps of each tuning run (default --steps)")
    ap.add_argument("--lr", action="append", default=[], metavar="METHOD=LR", help="a method's learning rate")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="more trainer overrides for every run")
    ap.add_argument("--results", default=str(RESULTS), help="where NAME.json/.png and the logs go (default docs/results)")
    ap.add_argument("--report-only", action="store_true", help="run nothing: report the runs in --output")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="keep a finished run's checkpoint (~3 GB each for SmolLM2; by default deleted once its logs "
                         "are kept; needed only to extend finished runs to more --steps)")
    args = ap.parse_args(argv)
    from dgpo_ref import LOSSES

    for m in args.methods:
        if m not in LOSSES:
            raise CliError(f"--methods: unknown loss {m!r}; choose from {', '.join(LOSSES)}")
    if args.seeds < 2:
        raise CliError(f"--seeds must be >= 2 for an interval, got {args.seeds}")
    if args.steps < 1 or args.jobs < 1:
        raise CliError("--steps and --jobs must be positive integers")
    reference = "dgpo" if "dgpo" in args.methods else args.methods[0]
    root = Path(args.output)
    sets = SETTINGS[args.setting] + args.sets
    _check_sets(sets, args.methods)
    lrs: dict[str, float | None] = {m: None for m in args.methods}
    results = Path(args.results)
    tuning_file = results / f"{args.name}_tuning.json"
    if args.tune is not None:
        if args.tune:
            tuned = tune(root / "tuning", results / args.name / "tuning", args.methods, args.tune, sets,
                         args.tune_steps or args.steps, args.jobs, args.keep_checkpoints)
            results.mkdir(parents=True, exist_ok=True)
            tuning_file.write_text(json.dumps(tuned, indent=2) + "\n")
        elif not tuning_file.is_file():
            raise CliError(f"--tune without values reuses {tuning_file}, which does not exist")
        lrs.update({m: lr for m, lr in json.loads(tuning_file.read_text())["best"].items() if m in lrs})
    for item in args.lr:
        m, _, v = item.partition("=")
        if m not in lrs:
            raise CliError(f"--lr {item!r}: expected METHOD=LR with METHOD one of {', '.join(args.methods)}")
        try:
            lrs[m] = float(v)
        except ValueError:
            raise CliError(f"--lr {item!r}: {v!r} is not a number") from None
    seeds = list(range(args.seeds))
    jobs = [(run_dir(root, m, s, lrs[m]), [*sets, f"loss={m}", f"seed={s}", f"steps={args.steps}", "progress=false",
                                          "save_every=2", *([f"lr={lrs[m]}"] if lrs[m] is not None else [])])
            for s in seeds for m in args.methods]
    dest = results / args.name
    if not args.report_only:
        run_all(jobs, args.steps, args.jobs, dest, args.keep_checkpoints)
    r = report(root, dest, args.methods, seeds, lrs, args.setting, sets, args.steps, reference)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(r, indent=2) + "\n")
    plot(r, results / f"{args.name}.png")
    print_report(r)
    print(f"\n[compare] wrote {results / (args.name + '.json')} and {results / (args.name + '.png')}")
    return 0


def _check_sets(sets: list[str], methods: list[str]) -> None:
    """Every run's config must be valid before anything starts (one line naming the field)."""
    from trainer.config import build_config, validate

    for m in methods:
        try:
            validate(build_config("default", [*sets, f"loss={m}"]))
        except ValueError as exc:
            raise CliError(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(main())
