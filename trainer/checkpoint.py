"""Atomic checkpoints: ``RUN/checkpoint/`` holds the model (``save_pretrained``, safetensors, loadable
by transformers and vLLM), the tokenizer, and ``trainer_state.pt`` (optimizer, scheduler, RNG
states, step and data position). It is written to ``RUN/.checkpoint.tmp`` and renamed into place, so
a crash leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import errno
import random
import resource
import shutil
from pathlib import Path

import numpy as np
import torch

NAME = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message names the path and the cause."""


def save(run_dir: Path, model, tokenizer, optimizer, scheduler, state: dict, extra=None) -> Path:
    """Write the checkpoint atomically. If writing fails (disk full, ``ulimit -f``) the partial
    ``.checkpoint.tmp`` is removed, so it does not keep the disk full, the previous checkpoint stays,
    and the error names the path and the cause. ``extra(folder)``, if given, writes more files into the
    checkpoint before it is moved into place."""
    tmp, final, old = run_dir / f".{NAME}.tmp", run_dir / NAME, run_dir / f".{NAME}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(tmp, model, tokenizer, optimizer, scheduler, state)
        if extra is not None:
            extra(tmp)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # torch.save reports a full disk as a RuntimeError, safetensors as a SafetensorError ("I/O error")
        if not isinstance(exc, (OSError, RuntimeError)) and "I/O error" not in str(exc):
            raise
        kept = f"the previous checkpoint {final} is intact" if latest(run_dir) else "no checkpoint was saved"
        raise CheckpointError(f"cannot write the checkpoint {tmp}: {write_failure(exc, run_dir)}; {kept}") from None
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _write(tmp: Path, model, tokenizer, optimizer, scheduler, state: dict) -> None:
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    torch.save({
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "state": state,
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }, tmp / "trainer_state.pt")


def write_failure(exc: BaseException, run_dir: Path) -> str:
    """Why a write failed, in words. torch reports a full disk as "file write failed" with no cause,
    so then the cause is read from the machine: the file-size limit, or the free space."""
    text, code = str(exc), getattr(exc, "errno", None)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if code == errno.ENOSPC or "No space left" in text:
        return "no space left on device"
    if code == errno.EFBIG or "File too large" in text:
        return f"file too large for the size limit (ulimit -f: {limit} bytes)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if limit != resource.RLIM_INFINITY:
        return f"{text.splitlines()[0][:120]}, likely the file-size limit (ulimit -f: {limit} bytes)"
    free = shutil.disk_usage(run_dir).free
    if free < 64 * 2**20:
        return f"no space left on device ({free} bytes free)"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def load_state(ckpt: Path, optimizer, scheduler) -> dict:
    """Restore optimizer, scheduler and RNG states; return the trainer's own state (step, position)."""
    blob = _read(ckpt)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    random.setstate(blob["rng"]["python"])
    np.random.set_state(blob["rng"]["numpy"])
    torch.set_rng_state(blob["rng"]["torch"])
    if blob["rng"].get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    return blob["state"]


def peek_state(ckpt: Path) -> dict:
    """The trainer's state (step, opt_step, position) of a checkpoint, read without loading the model
    (tensors memory-mapped): a resume checks it, and that the checkpoint is readable, before heavy work."""
    return _read(ckpt, mmap=True)["state"]


def _read(ckpt: Path, mmap: bool = False) -> dict:
    path = ckpt / "trainer_state.pt"
    try:
        blob = torch.load(path, weights_only=False, mmap=mmap)
        if not (isinstance(blob, dict) and {"optimizer", "scheduler", "state", "rng"} <= set(blob)):
            raise ValueError("not a dgpo trainer state")
    except Exception as exc:  # noqa: BLE001 (a truncated zip, a pickle error, a foreign file: all unreadable)
        raise CheckpointError(f"--resume: checkpoint {path} cannot be read ({type(exc).__name__}: "
                              f"{(str(exc).splitlines() or [''])[0][:160]}); it is damaged, nothing was changed") from None
    return blob


def latest(run_dir: Path) -> Path | None:
    final, old = run_dir / NAME, run_dir / f".{NAME}.old"
    if (final / "trainer_state.pt").is_file():
        return final
    if (old / "trainer_state.pt").is_file():  # crashed between the two renames
        return old
    return None
