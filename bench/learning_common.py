"""Shared by the learning benchmarks: run ``dgpo train`` for a wall-clock budget, read its evals."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from trainer.config import build_config
from trainer.loop import train
from trainer.plot import draw, read_jsonl

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def budget_sets(minutes: float) -> list[str]:
    """The overrides every learning benchmark run gets: a wall-clock budget instead of a step count."""
    return [f"max_minutes={minutes}", "steps=100000", "save_every=0"]


def run(out: Path, sets: list[str], minutes: float) -> list[dict]:
    """Train with the default config plus ``sets`` for ``minutes`` (model loading included)."""
    cfg = build_config("default", [*sets, *budget_sets(minutes)])
    t = time.time()
    train(cfg, out, overwrite=True)
    print(f"[bench] {out.name}: {time.time() - t:.0f} s")
    draw(out, out / "metrics.png")
    return read_jsonl(out / "eval.jsonl")


def accuracy_at(evals: list[dict], minutes: float, key: str, clock: str = "elapsed_s") -> float | None:
    """The last evaluation at or before ``minutes`` on ``clock``; None if the run ended before then."""
    if not evals or evals[-1][clock] < 60 * minutes - 30:
        return None
    before = [e for e in evals if e[clock] <= 60 * minutes + 1]
    return before[-1][key] if before else None


def first_reaching(evals: list[dict], target: float, key: str, clock: str) -> float | None:
    hit = [e for e in evals if e[key] >= target]
    return hit[0][clock] / 60 if hit else None


def save(name: str, payload: dict, run_dirs: dict[str, Path]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    for label, d in run_dirs.items():
        for f in ("eval.jsonl", "metrics.jsonl", "config.json"):
            if (d / f).is_file():
                shutil.copy(d / f, RESULTS / f"{name}_{label}_{f}")
        if (d / "metrics.png").is_file():
            shutil.copy(d / "metrics.png", RESULTS / f"{name}_{label}_metrics.png")
