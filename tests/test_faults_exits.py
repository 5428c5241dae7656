"""Issue 17, hangs and false passes: a held-out set larger than a generator's problem space fails in
seconds, before the run folder exists; a math worker that cannot start says so in seconds; code
under `dgpo conformance` that exits (on import, `sys.exit` or `os._exit` in the loss) fails the run."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer.tasks import DISTINCT, GENERATORS, GeneratedTask, TaskError

ROOT = Path(__file__).resolve().parents[1]


def _dgpo(*args: str, timeout: float, cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess, float]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dgpo_cli", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    return out, time.perf_counter() - t


# --- held-out draws -------------------------------------------------------------------------------
def test_add2_space_is_counted_right():
    rng = random.Random(0)
    assert len({GENERATORS["add2"](rng).prompt for _ in range(200_000)}) == DISTINCT["add2"] == 8100


@pytest.mark.parametrize("eval_size", ["4051", "8100", "1000000000000"])
def test_too_large_eval_size_fails_in_seconds_before_the_run_folder(tmp_path, eval_size):
    out, elapsed = _dgpo("train", "--preset", "smoke", "--output", str(tmp_path / "run"), "--set", "task=add2",
                         "--set", f"eval_size={eval_size}", timeout=60)
    assert out.returncode == 2, out.stderr[-500:]
    line, = out.stderr.strip().splitlines()
    assert f"eval_size={eval_size}" in line and "8100 distinct problems" in line and "(4050)" in line
    assert elapsed < 30 and not (tmp_path / "run").exists()


def test_the_largest_allowed_held_out_set_leaves_training_problems():
    t = time.perf_counter()
    task = GeneratedTask("add2", 0, DISTINCT["add2"] // 2)
    train = [task.train_problem(i) for i in range(500)]
    held = {p.prompt for p in task.splits["val"]}
    assert len(held) == 4050 and not {p.prompt for p in train} & held
    assert time.perf_counter() - t < 10
    with pytest.raises(TaskError, match="at most half"):
        GeneratedTask("arith-mixed", 0, DISTINCT["arith-mixed"] // 2 + 1)


# --- the math worker --------------------------------------------------------------------------------
NO_MAIN_GUARD = """
import time
from trainer.rewards import REWARDS
t = time.perf_counter()
try:
    REWARDS["math"]("The answer is \\\\boxed{4}", "4")
finally:
    print(f"after {time.perf_counter() - t:.1f} s", flush=True)
"""


def test_math_reward_from_a_script_without_main_guard_fails_in_seconds(tmp_path):
    script = tmp_path / "score.py"
    script.write_text(NO_MAIN_GUARD)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=100,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    elapsed = time.perf_counter() - t
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: the math-verify worker process did not start") and "__main__" in last
    assert elapsed < 60, elapsed  # the worker dies at once; before, the caller waited 120 s


# --- dgpo conformance -------------------------------------------------------------------------------
EXITS = {
    "on_import": "import sys\nsys.exit(0)\ndef loss(*a, **kw):\n    pass\n",
    "sys_exit_in_loss": "import sys\ndef loss(*a, **kw):\n    sys.exit(0)\n",
    "os_exit_in_loss": "import os\ndef loss(*a, **kw):\n    os._exit(0)\n",
}


@pytest.mark.parametrize("name", sorted(EXITS))
def test_conformance_fails_when_the_code_under_test_exits(tmp_path, name):
    impl = tmp_path / f"{name}.py"
    impl.write_text(EXITS[name])
    out, _ = _dgpo("conformance", "--impl", f"{impl}:loss", "--property", "gradient", "--profile", "ci", timeout=300)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "the code under test exited" in out.stdout + out.stderr
    assert "1 passed" not in out.stdout
