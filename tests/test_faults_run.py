"""Issue 17, the run folder: `dgpo train` ends with a summary and keeps `metrics.png` drawn; a resume
keeps every logged evaluation, drops a torn log line with a warning, refuses to do nothing; OS errors
(a file as --output, a read-only folder, a damaged checkpoint, `ulimit -f` during a checkpoint) are
one line naming the path and the cause, and leave config.json, the logs and the last checkpoint whole.

One smoke run (steps 3, eval_every 2, save_every 2) is shared; each test works on its own copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainer.config import build_config

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--preset", "smoke", "--set", "progress=false", "--set", "prompts_per_step=2", "--set", "max_new_tokens=4",
         "--set", "steps=3"]


def _dgpo(argv: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgpo_cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _one_line(err: str) -> str:
    """The one error line (transformers' progress bars may precede it), and no traceback."""
    errors = [ln for ln in err.splitlines() if ln.startswith("dgpo train: error:")]
    assert len(errors) == 1 and "Traceback" not in err and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


def _saved_step(run: Path) -> int:
    return torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=False, mmap=True)["state"]["step"]


def _snapshot(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in ("config.json", "metrics.jsonl", "eval.jsonl")}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = tmp_path_factory.mktemp("smoke") / "run"
    out = _dgpo(["train", "--output", str(run), *SMOKE])
    assert out.returncode == 0, out.stderr[-2000:]
    return run, out


@pytest.fixture
def run(smoke, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(smoke[0], copy)
    return copy


def _summary(stdout: str) -> dict[str, str]:
    rows = [ln.strip().split(":", 1) for ln in stdout.splitlines() if ln.startswith("  ")]
    return {k: v.strip() for k, v in rows}


# --- what the main job shows ------------------------------------------------------------------------------
def test_train_ends_with_a_summary_and_a_drawn_plot(smoke):
    run, out = smoke
    assert out.stdout.splitlines()[0] == "dgpo train: done, 3 of 3 steps"
    s = _summary(out.stdout)
    last = _lines(run / "eval.jsonl")[-1]
    assert s["held-out accuracy"].startswith(f"val/avg@2 {last['val/avg@2']:.3f}, val/pass@2 {last['val/pass@2']:.3f}")
    assert f"test/avg@2 {last['test/avg@2']:.3f}" in s["held-out accuracy"]
    assert s["run folder"].startswith(str(run)) and s["checkpoint"] == str(run / "checkpoint")
    assert s["plot"] == str(run / "metrics.png") and (run / "metrics.png").stat().st_size > 10_000
    assert s["resume"] == f"dgpo train --output {run} --resume --set steps=6"
    assert s["evaluate"].startswith(f"dgpo eval --model {run / 'checkpoint'} --task copy-digit --k 2 ")
    # the printed evaluation command runs as printed, on the run's own held-out set
    ev = _dgpo(shlex.split(s["evaluate"])[1:], timeout=120)
    assert ev.returncode == 0, ev.stderr[-1000:]
    smoke_cfg = build_config("smoke")
    assert json.loads(ev.stdout.strip().splitlines()[-1])["problems"] == {"val": smoke_cfg.eval_size,
                                                                         "test": smoke_cfg.test_size}


def test_metrics_png_is_drawn_during_training_not_only_at_the_end(tmp_path, monkeypatch):
    from trainer import loop, plot
    from trainer.config import build_config

    drawn = []
    real = plot.refresh
    monkeypatch.setattr(plot, "refresh", lambda run_dir: drawn.append(len(_lines(run_dir / "metrics.jsonl")))
                        or real(run_dir))  # (metrics.jsonl exists: the first draw follows the first step)
    cfg = build_config("smoke", ["progress=false", "prompts_per_step=2", "max_new_tokens=4", "steps=3",
                                 "eval_every=1", "save_every=0"])
    loop.train(cfg, tmp_path / "run")
    assert drawn == [2, 4, 6]  # once per iteration that evaluated or saved, with the metrics so far
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 10_000


# --- resume --------------------------------------------------------------------------------------------------
def test_resume_keeps_every_evaluation_and_drops_a_torn_line(run, smoke):
    for name in ("metrics.jsonl", "eval.jsonl"):
        with (run / name).open("a") as fh:  # a line cut short by a full disk
            fh.write('{"step": 7, "iteration": 4, "val/avg@2": 0.')
    resume = _summary(smoke[1].stdout)["resume"].replace(str(smoke[0]), str(run))
    out = _dgpo(shlex.split(resume)[1:])
    assert out.returncode == 0, out.stderr[-2000:]
    warnings = [ln for ln in out.stderr.splitlines() if "torn line" in ln]
    assert len(warnings) == 2 and all(ln.startswith("warning: ") for ln in warnings)
    assert {ln.split(":")[1].strip() for ln in warnings} == {str(run / "metrics.jsonl"), str(run / "eval.jsonl")}
    # the end-of-run evaluation at iteration 3 stays: 3 is not a multiple of eval_every=2
    assert [e["iteration"] for e in _lines(run / "eval.jsonl")] == [0, 2, 3, 4, 6]
    assert [r["step"] for r in _lines(run / "metrics.jsonl")] == list(range(1, 13))
    assert json.loads((run / "config.json").read_text())["steps"] == 6 and _saved_step(run) == 6


@pytest.mark.parametrize("steps", [2, 3])
def test_resume_with_no_steps_left_says_so_and_changes_nothing(run, steps):
    before = _snapshot(run)
    t = time.perf_counter()
    out = _dgpo(["train", "--output", str(run), "--resume", "--set", f"steps={steps}"])
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert "has done 3 steps" in line and f"steps={steps}" in line and "nothing was changed" in line
    assert _snapshot(run) == before and time.perf_counter() - t < 60


# --- OS errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["trainer_state.pt", "model.safetensors"])
def test_a_damaged_checkpoint_is_one_line_and_changes_nothing(run, damage):
    path = run / "checkpoint" / damage
    path.write_bytes(path.read_bytes()[:5000])
    before = _snapshot(run)
    out = _dgpo(["train", "--output", str(run), "--resume", "--set", "steps=6"])
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert str(run / "checkpoint") in line and "cannot be" in line
    assert _snapshot(run) == before


def test_checkpoint_under_ulimit_f_is_one_line_and_keeps_the_last_one(run):
    limit = 8 << 20  # above any log line, below the 26 MB model

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = _dgpo(["train", "--output", str(run), "--resume", "--set", "steps=4"], preexec_fn=small_files)
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert line.startswith("dgpo train: error: cannot write the checkpoint") and str(run / ".checkpoint.tmp") in line
    assert f"ulimit -f: {limit} bytes" in line and "previous checkpoint" in line
    assert not (run / ".checkpoint.tmp").exists() and _saved_step(run) == 3
    assert [r["step"] for r in _lines(run / "metrics.jsonl")] == list(range(1, 9))  # whole lines, step 4 logged
    resumed = _dgpo(["train", "--output", str(run), "--resume", "--set", "steps=4"])  # and it resumes from 3
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["step"] for r in _lines(run / "metrics.jsonl")] == list(range(1, 9)) and _saved_step(run) == 4


def test_output_naming_a_file_is_one_line(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    out = _dgpo(["train", "--output", str(target), *SMOKE], timeout=60)
    assert out.returncode == 2
    assert str(target) in _one_line(out.stderr) and "not a folder" in out.stderr
    assert target.read_text() == "keep"


@contextlib.contextmanager
def read_only_folder(tmp_path: Path):
    """A folder nobody can write: chmod for a user; for root (whom permissions do not stop) a
    read-only bind mount, else /sys (not writable even for root in a container)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    run = lambda *cmd: subprocess.run(cmd, capture_output=True).returncode == 0  # noqa: E731
    bound = run("mount", "--bind", str(folder), str(folder))
    try:
        yield folder if bound and run("mount", "-o", "remount,ro,bind", str(folder)) else Path("/sys")
    finally:
        if bound:
            run("umount", str(folder))


def test_read_only_output_folder_is_one_line_before_the_model_loads(tmp_path):
    with read_only_folder(tmp_path) as folder:
        before = sorted(folder.iterdir())
        t = time.perf_counter()
        out = _dgpo(["train", "--output", str(folder), *SMOKE], timeout=60)
        assert out.returncode == 2, out.stderr[-1000:]
        line = _one_line(out.stderr)
        assert f"--output {folder}: cannot write there" in line
        assert "read-only file system" in line or "permission denied" in line
        assert time.perf_counter() - t < 30 and sorted(folder.iterdir()) == before
