"""Learning benchmark 2 (headroom): DGPO vs GRPO on the default task, same seed, same wall clock.

The default task (``arith-mixed``: + and − of 1- to 3-digit numbers, × of 1- to 2-digit numbers)
starts at <= 20 % greedy accuracy (9.0 % measured) and does not saturate in 30 minutes, so methods can
differ. Each method trains for ``--minutes`` of wall clock; the script prints held-out accuracy at
10, 20 and 30 minutes, and draws accuracy, train reward, entropy and region fractions side by side
into docs/results/learning_headroom.png (numbers in docs/results/learning_headroom.json).

    python -m bench.learning_headroom [--minutes 30] [--methods dgpo grpo] [--parallel] [--set key=value ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.learning_common import RESULTS, accuracy_at, budget_sets, run, save
from trainer.plot import draw, read_jsonl

KEY = "test/avg@1"
HEADROOM_SETS = ["eval_size=128", "test_size=512", "eval_every=5"]


def plot(run_dirs: dict[str, Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for label, d in run_dirs.items():
        ev, rows = read_jsonl(d / "eval.jsonl"), read_jsonl(d / "metrics.jsonl")
        axes[0].plot([e["elapsed_s"] / 60 for e in ev], [e[KEY] for e in ev], marker="o", label=label)
        t = [r["elapsed_s"] / 60 for r in rows]
        axes[1].plot(t, [r["reward/mean"] for r in rows], lw=0.8, label=label)
        axes[2].plot(t, [r["entropy"] for r in rows], lw=0.8, label=label)
        for region in ("LN", "HP", "LP", "HN"):
            axes[3].plot(t, [r[f"region/{region}"] for r in rows], lw=0.8, label=f"{label} {region}")
    for ax, title in zip(axes, ("held-out greedy accuracy", "train reward", "entropy", "boundary region fractions")):
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def run_parallel(methods: list[str], dirs: dict[str, Path], sets: list[str], minutes: float) -> None:
    """One ``dgpo train`` child per method, started together, ``torch threads = cores // methods`` each."""
    import os
    import subprocess
    import sys

    threads = max(1, (os.cpu_count() or 1) // len(methods))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = {}
    for m in methods:
        cmd = [sys.executable, "-m", "dgpo_cli", "train", "--output", str(dirs[m]), "--overwrite",
               *[x for s in [*sets, f"loss={m}", *budget_sets(minutes), "progress=false"] for x in ("--set", s)]]
        procs[m] = subprocess.Popen(cmd, env=env)
    failed = {m: p.wait() for m, p in procs.items()}
    if any(failed.values()):
        raise SystemExit(f"training failed: {failed}")
    for m in methods:
        draw(dirs[m], dirs[m] / "metrics.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--methods", nargs="+", default=["dgpo", "grpo"])
    ap.add_argument("--output", default="runs/bench_headroom")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: tabulate and plot runs already in --output")
    ap.add_argument("--parallel", action="store_true",
                    help="train the methods at the same time, each in its own process with an equal share of "
                         "the CPU threads (same wall clock and same machine load for every method)")
    args = ap.parse_args(argv)
    dirs = {m: Path(args.output) / m for m in args.methods}
    if args.parallel and not args.report_only:
        run_parallel(args.methods, dirs, HEADROOM_SETS + args.sets, args.minutes)
    if args.report_only or args.parallel:
        evals = {m: read_jsonl(dirs[m] / "eval.jsonl") for m in args.methods}
    else:
        evals = {m: run(dirs[m], HEADROOM_SETS + [f"loss={m}"] + args.sets, args.minutes) for m in args.methods}
    marks = [10, 20, 30]
    print(f"{'method':<8}{'untrained':>10}" + "".join(f"{f'{t} min':>9}" for t in marks))
    table = {}
    for m, ev in evals.items():
        table[m] = {"untrained": ev[0][KEY], **{f"{t}min": accuracy_at(ev, t, KEY) for t in marks},
                    "final": ev[-1][KEY], "final_minutes": ev[-1]["elapsed_s"] / 60}
        cells = "".join(f"{v:>9.3f}" if v is not None else f"{'-':>9}" for v in (table[m][f'{t}min'] for t in marks))
        print(f"{m:<8}{table[m]['untrained']:>10.3f}{cells}")
    save("learning_headroom", {"minutes": args.minutes, "settings": HEADROOM_SETS + args.sets, "results": table}, dirs)
    plot(dirs, RESULTS / "learning_headroom.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
