"""Target 4: one trainer iteration broken down (rollout, old log-probs, updates, weight push).

Runs the real trainer (``trainer.loop.train``) for ``steps`` iterations of a preset, in a fresh
child process and a temporary run folder, with evaluation off, and reads the phase times it logs
per iteration in ``metrics.jsonl`` (``time/rollout``, ``time/old_logprob``, ``time/update`` summed
over the iteration's optimizer steps, ``time/push``). The first iteration pays warm-up; the table
reports the last. Tokens per second overall = generated tokens / the four phases' sum.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from bench.common import run_child

PHASES = {"rollout": "time/rollout", "old_logprobs": "time/old_logprob", "weight_push": "time/push"}
STEPS = 4
"""Iterations per child: the first pays warm-up, the report averages the others."""
ROUNDS = 2
"""Children per backend in ``dgpo bench``'s trainer section, alternating hf, vllm, hf, vllm."""


def measure(preset: str, steps: int, sets: list[str]) -> dict:
    """In this (fresh) process: train ``steps`` iterations of ``preset``; per-iteration phase times."""
    from trainer.config import build_config
    from trainer.loop import train

    cfg = build_config(preset, [f"steps={steps}", "eval_every=0", "save_every=0", "progress=false", *sets])
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "run")
        records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
        resolved = json.loads((Path(tmp) / "run" / "config.json").read_text()).get("resolved_backend")
    iterations = []
    for it in sorted({r["iteration"] for r in records}):
        rows = [r for r in records if r["iteration"] == it]
        sec = {name: rows[0][key] for name, key in PHASES.items()}
        sec["updates"] = sum(r["time/update"] for r in rows)
        total = sum(sec.values())
        iterations.append({"iteration": it, "seconds": {k: round(v, 3) for k, v in sec.items()},
                           "total_s": round(total, 3), "tokens": rows[0]["tokens"],
                           "tokens_per_s_overall": round(rows[0]["tokens"] / total, 1),
                           "rollout_tokens_per_s": round(rows[0]["tokens_per_s"], 1)})
    steady = iterations[1:] or iterations
    mean = {k: round(sum(it["seconds"][k] for it in steady) / len(steady), 3) for k in steady[0]["seconds"]}
    total = sum(mean.values())
    tokens = sum(it["tokens"] for it in steady) / len(steady)
    summary = {"iterations": [it["iteration"] for it in steady], "seconds": mean, "total_s": round(total, 3),
               "tokens": round(tokens, 1), "tokens_per_s_overall": round(tokens / total, 1)}
    keys = ("model", "backend", "dtype", "prompts_per_step", "group_size", "max_new_tokens", "mini_batches",
            "micro_batch_size", "loss")
    config = {k: getattr(cfg, k) for k in keys}
    if resolved:
        config["backend"] = f"{cfg.backend} -> {resolved}" if resolved != cfg.backend else resolved
    return {"preset": preset, "config": config, "iterations": iterations, "steady": summary}


def paired_backends(rows: list[dict]) -> dict | None:
    """Default-preset children in the order they ran (hf, vllm, hf, vllm, ...): per round, vllm's
    steady-state seconds over hf's, for the whole iteration and for the update phase; None without a pair."""
    default = [r for r in rows if r["preset"] == "default" and "steady" in r]
    pairs = list(zip(*([r for r in default if r["config"]["backend"].endswith(b)] for b in ("hf", "vllm"))))
    if not pairs:
        return None
    out = {}
    for key, seconds in (("total", lambda r: r["steady"]["total_s"]), ("updates", lambda r: r["steady"]["seconds"]["updates"])):
        ratios = [seconds(v) / seconds(h) for h, v in pairs]
        out[key] = {"per_round": [round(x, 3) for x in ratios], "median": round(statistics.median(ratios), 3)}
    return out


def run(presets=("smoke", "default"), steps: int = 2, progress=None, variants=()) -> list[dict]:
    """One child per preset, then one per ``(preset, sets)`` variant (e.g. the default preset with
    ``backend=vllm``, to see the weight push next to the default backend's iteration)."""
    rows = []
    for preset, sets in [(p, []) for p in presets] + list(variants):
        rows.append(run_child("bench.bench_trainer", {"preset": preset, "steps": steps, "sets": list(sets)}))
        if progress is not None:
            progress(rows[-1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--preset", default="smoke")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))), flush=True)
    else:
        print(json.dumps(run((args.preset,))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
