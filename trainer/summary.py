"""What ``dgpo train`` prints when it ends: the final held-out accuracy, where the run folder, the plot
and the checkpoint are, and the exact commands to resume the run or evaluate its checkpoint."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import checkpoint
from .config import TrainConfig

EVAL_FIELDS = ("eval_size", "test_size", "eval_task", "prompt_field", "answer_field", "prompt_suffix", "reward", "max_new_tokens",
               "eval_temperature", "chat_template", "system_prompt", "backend", "dtype", "seed")
"""Config fields `dgpo eval` reads besides --task and --k: passed with --set when the run's differ from
the defaults, so that the printed command evaluates as the run did."""


def eval_command(cfg: TrainConfig, ckpt: Path) -> str:
    default = TrainConfig()
    sets = [f"{f}={_text(getattr(cfg, f))}" for f in EVAL_FIELDS if getattr(cfg, f) != getattr(default, f)]
    words = ["dgpo", "eval", "--model", str(ckpt), "--task", cfg.task, "--k", str(cfg.eval_k)]
    for s in sets:
        words += ["--set", s]
    return shlex.join(words)


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def resume_command(cfg: TrainConfig, run_dir: Path, done: int) -> str:
    """Continue to ``steps`` when stopped early (``max_minutes``); else extend to twice as many."""
    words = ["dgpo", "train", "--output", str(run_dir), "--resume"]
    return shlex.join(words if done < cfg.steps else [*words, "--set", f"steps={2 * cfg.steps}"])


def text(cfg: TrainConfig, run_dir: Path, last_eval: dict) -> str:
    ckpt = checkpoint.latest(run_dir)
    done = checkpoint.peek_state(ckpt)["step"] if ckpt else 0
    scores = ", ".join(f"{k} {v:.3f}" for k, v in last_eval.items() if k.split("/")[-1].startswith(("avg@", "pass@")))
    plot = run_dir / "metrics.png"
    rows = [
        f"dgpo train: done, {done} of {cfg.steps} steps",
        f"  held-out accuracy: {scores or 'not evaluated (eval_every=0)'}",
        f"  run folder:  {run_dir}  (metrics.jsonl, eval.jsonl, config.json)",
        f"  plot:        {plot if plot.is_file() else 'none (no metrics yet)'}",
        f"  checkpoint:  {ckpt or 'none'}",
        f"  resume:      {resume_command(cfg, run_dir, done)}",
    ]
    if ckpt:
        rows.append(f"  evaluate:    {eval_command(cfg, ckpt)}")
    return "\n".join(rows)
