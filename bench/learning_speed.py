"""Learning benchmark 1 (speed): two-digit addition, held-out greedy accuracy from ~14 % to >= 70 %.

Target (issue 5): 70 % within 8 minutes of wall clock on the 2-core CPU, model loading included,
and >= 70 % at every later evaluation until 30 minutes; reported on the test split (512 problems), never on the validation split. Prints the
accuracy at each evaluation on two clocks: ``elapsed`` (everything, evaluations included) and
``train`` (everything except the time spent evaluating, which a real run would do less often);
writes docs/results/learning_speed.json and copies the run's logs and plot there.

    python -m bench.learning_speed [--minutes 30] [--output runs/bench_speed] [--set key=value ...]
    python -m bench.learning_speed --seeds [10 11 12 13 14] [--long 2] [--short-minutes 15]   # across fresh seeds
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from bench.learning_common import RESULTS, first_reaching, run, save
from trainer.plot import read_jsonl

# the test split (512 problems: half the variance of 256 per evaluation) is reported; the validation
# split (128) is the one any tuning looks at; the rest: defaults (evaluation every 5 steps)
SPEED_SETS = ["task=add2", "eval_size=128", "test_size=512", "loss=dgpo"]
KEY = "test/avg@1"
FRESH_SEEDS = (10, 11, 12, 13, 14)
"""Seeds never used to choose a default (0, 1 and 2 were): the across-seed report runs on these."""


def verdict(evals: list[dict], minutes: float, metrics: list[dict] | None = None) -> dict:
    """Minutes to 70 % (both clocks), the minimum after, and whether the target holds for this run.

    Also the machine-independent view, since this VM's speed has been seen to change by 2x within
    one run: the iteration of the first evaluation at 70 %, and the median seconds per optimizer
    step of the update phase over the first 8 minutes (``time/update`` in ``metrics``: the machine's
    speed while the target was decided)."""
    t70 = first_reaching(evals, 0.70, KEY, "elapsed_s")
    after = [e[KEY] for e in evals if t70 is not None and e["elapsed_s"] / 60 >= t70]
    hit = [e["iteration"] for e in evals if e[KEY] >= 0.70]
    early = sorted(r["time/update"] for r in metrics or [] if r["elapsed_s"] <= 8 * 60 and "time/update" in r)
    return {
        "iteration_at_70": hit[0] if hit else None,
        "update_s_median_first_8_min": early[len(early) // 2] if early else None,
        "untrained": evals[0][KEY] if evals else None,
        "minutes_to_70_elapsed": t70, "minutes_to_70_train_clock": first_reaching(evals, 0.70, KEY, "train_elapsed_s"),
        "min_accuracy_after_reaching_70": min(after) if after else None,
        "final": evals[-1][KEY] if evals else None, "minutes_run": minutes,
        "target_met": bool(t70 is not None and t70 <= 8 and min(after) >= 0.70),
    }


def across_seeds(seeds: list[int], long: int, minutes: float, long_minutes: float, root: Path, sets: list[str]) -> dict:
    """One run per seed, one at a time (timing needs a quiet machine); the first ``long`` seeds run
    ``long_minutes``, the others ``minutes``. A seed whose log is already in docs/results is reused."""
    per_seed = {}
    for i, seed in enumerate(seeds):
        m = long_minutes if i < long else minutes
        name = f"learning_speed_seed{seed}"
        saved = RESULTS / f"{name}_dgpo_eval.jsonl"
        if saved.is_file() and (RESULTS / f"{name}.json").is_file():
            evals = read_jsonl(saved)
            print(f"[bench] seed {seed}: reusing {saved.name}")
        else:
            evals = run(root / f"seed{seed}", [*SPEED_SETS, *sets, f"seed={seed}"], m)
            save(name, {**verdict(evals, m, read_jsonl(root / f"seed{seed}" / "metrics.jsonl")), "seed": seed,
                        "settings": [*SPEED_SETS, *sets, f"seed={seed}"]},
                 {"dgpo": root / f"seed{seed}"})
        per_seed[seed] = verdict(evals, m, read_jsonl(RESULTS / f"{name}_dgpo_metrics.jsonl"))
    t70 = [v["minutes_to_70_elapsed"] for v in per_seed.values()]
    reached = sorted(t for t in t70 if t is not None)
    return {
        "seeds": seeds, "per_seed": per_seed,
        "met": sum(v["target_met"] for v in per_seed.values()), "runs": len(seeds),
        "reached_70": len(reached),
        "median_minutes_to_70": reached[len(reached) // 2] if len(reached) == len(seeds) else None,
        "worst_minutes_to_70": max(reached) if len(reached) == len(seeds) else None,
        "min_after_70": min((v["min_accuracy_after_reaching_70"] for v in per_seed.values()
                             if v["min_accuracy_after_reaching_70"] is not None), default=None),
        "iterations_at_70": [v["iteration_at_70"] for v in per_seed.values()],
        "update_s_median_first_8_min": [v["update_s_median_first_8_min"] for v in per_seed.values()],
        "settings": [*SPEED_SETS, *sets],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--output", default="runs/bench_speed")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--seeds", type=int, nargs="*", default=None,
                    help=f"run these seeds one after another and report across them (no value: {FRESH_SEEDS})")
    ap.add_argument("--long", type=int, default=2, help="with --seeds: how many run --minutes; the rest --short-minutes")
    ap.add_argument("--short-minutes", type=float, default=15.0)
    ap.add_argument("--report", default="learning_speed_seeds",
                    help="with --seeds: the report's name in docs/results (NAME.json); per-seed logs keep their names")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.report):
        ap.error(f"--report {args.report!r}: a file name (letters, digits, _ . -), without a folder")
    out = Path(args.output)
    if args.seeds is not None:
        report = across_seeds(args.seeds or list(FRESH_SEEDS), args.long, args.short_minutes, args.minutes, out,
                              args.sets)
        (RESULTS / f"{args.report}.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: v for k, v in report.items() if k != "per_seed"}, indent=2))
        return 0
    evals = run(out, SPEED_SETS + args.sets, args.minutes)
    print(f"{'iteration':>9} {'elapsed min':>11} {'train min':>9} {'accuracy':>8}")
    for e in evals:
        print(f"{e['iteration']:>9} {e['elapsed_s'] / 60:>11.1f} {e['train_elapsed_s'] / 60:>9.1f} {e[KEY]:>8.3f}")
    result = {**verdict(evals, args.minutes, read_jsonl(out / "metrics.jsonl")), "settings": SPEED_SETS + args.sets}
    print(result)
    save("learning_speed", result, {"dgpo": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
