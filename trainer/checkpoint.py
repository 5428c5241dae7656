"""Atomic checkpoints: ``RUN/checkpoint/`` holds the model (``save_pretrained``, safetensors, loadable
by transformers and vLLM), the tokenizer, and ``trainer_state.pt`` (optimizer, scheduler, RNG
states, step and data position). It is written to ``RUN/.checkpoint.tmp`` and renamed into place, so
a crash leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

NAME = "checkpoint"


def save(run_dir: Path, model, tokenizer, optimizer, scheduler, state: dict, extra=None) -> Path:
    """``extra(folder)``, if given, writes more files into the checkpoint before it is moved into place."""
    tmp, final, old = run_dir / f".{NAME}.tmp", run_dir / NAME, run_dir / f".{NAME}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    torch.save({
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "state": state,
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }, tmp / "trainer_state.pt")
    if extra is not None:
        extra(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(ckpt: Path, optimizer, scheduler) -> dict:
    """Restore optimizer, scheduler and RNG states; return the trainer's own state (step, position)."""
    blob = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    random.setstate(blob["rng"]["python"])
    np.random.set_state(blob["rng"]["numpy"])
    torch.set_rng_state(blob["rng"]["torch"])
    if blob["rng"].get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    return blob["state"]


def latest(run_dir: Path) -> Path | None:
    final, old = run_dir / NAME, run_dir / f".{NAME}.old"
    if (final / "trainer_state.pt").is_file():
        return final
    if (old / "trainer_state.pt").is_file():  # crashed between the two renames
        return old
    return None
