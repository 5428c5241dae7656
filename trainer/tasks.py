"""Tasks: questions with verifiable answers. Built-in seeded arithmetic generators, task families
named by a prefix (``mathematics:<module>``), or local files.

A task is two lists of :class:`Problem` (train, held-out). Built-in generators draw the held-out set
first and never give a training problem that is also held out. Files are JSONL (one object per
line) or Parquet with configurable prompt/answer fields; every row is checked before training and a
bad row is an error naming the file and the line (row). A task family (``FAMILIES``) may recommend
config values (its reward, its completion length) that apply unless the user set them.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    prompt: str
    answer: str


class TaskError(ValueError):
    """A task that cannot be loaded: the message names the file and line."""


# --- built-in generators ----------------------------------------------------------------------------
def _add2(rng: random.Random) -> Problem:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return Problem(f"What is {a} + {b}? Answer with just the number.", str(a + b))


_OPS: dict[str, Callable[[int, int], int]] = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
                                                "*": lambda a, b: a * b}


def _operand(rng: random.Random, max_digits: int) -> int:
    """A number of 1 to ``max_digits`` digits, the digit count drawn uniformly first (so that one-digit
    operands are as common as three-digit ones)."""
    digits = rng.randint(1, max_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def _arith_mixed(rng: random.Random) -> Problem:
    """+ and − of 1- to 3-digit numbers, × of 1- to 2-digit numbers: a ramp from problems the untrained
    model solves to ones it cannot (negative results, carries, two-digit products)."""
    op = rng.choice(list(_OPS))
    a, b = (_operand(rng, 3), _operand(rng, 3)) if op != "*" else (_operand(rng, 2), _operand(rng, 2))
    return Problem(f"What is {a} {op} {b}? Answer with just the number.", str(_OPS[op](a, b)))


GENERATORS: dict[str, Callable[[random.Random], Problem]] = {"add2": _add2, "arith-mixed": _arith_mixed}
"""Built-in task name -> function drawing one problem from a ``random.Random``."""


class GeneratedTask:
    """Problem ``i`` of the training stream is a pure function of (seed, i): resumable by index."""

    def __init__(self, name: str, seed: int, eval_size: int):
        self.name, self.seed, self._draw = name, seed, GENERATORS[name]
        rng = random.Random(f"{name}/{seed}/heldout")
        held: dict[str, Problem] = {}
        for _ in range(100 * eval_size):
            p = self._draw(rng)
            held.setdefault(p.prompt, p)
            if len(held) == eval_size:
                break
        self.heldout = list(held.values())
        self._held_prompts = set(held)

    def train_problem(self, index: int) -> Problem:
        rng = random.Random(f"{self.name}/{self.seed}/train/{index}")
        while True:
            p = self._draw(rng)
            if p.prompt not in self._held_prompts:
                return p


class FileTask:
    """Rows of a JSONL/Parquet file, shuffled per epoch with the seed; index ``i`` is resumable."""

    def __init__(self, rows: list[Problem], heldout: list[Problem], seed: int):
        if not rows:
            raise TaskError("the task has no training rows")
        self.rows, self.heldout, self.seed = rows, heldout, seed

    def train_problem(self, index: int) -> Problem:
        epoch, pos = divmod(index, len(self.rows))
        order = list(range(len(self.rows)))
        random.Random(f"{self.seed}/epoch/{epoch}").shuffle(order)
        return self.rows[order[pos]]


def prompt_probe(task) -> list[Problem]:
    """Problems whose prompts bound the rollout engine's prompt length: every row of a file task (vLLM
    rejects a prompt over ``max_model_len``, and a long one would have its completion cut), a family
    task's own probe, or a generator's held-out set and first 256 training draws (its prompts are
    bounded by construction)."""
    if hasattr(task, "probe_problems"):
        return task.probe_problems()
    if isinstance(task, FileTask):
        return task.rows + task.heldout
    return task.heldout + [task.train_problem(i) for i in range(256)]


def _boxed_or_text(answer: str) -> str:
    """MATH-style solutions carry the answer in the last \\boxed{...}; GSM8K's after '####'."""
    if "####" in answer:
        return answer.rsplit("####", 1)[1].strip().replace(",", "")
    from .rewards import last_boxed

    boxed = last_boxed(answer)
    return boxed if boxed is not None else answer.strip()


def _read_rows(path: Path) -> list[tuple[int, object]]:
    """(line number, row) pairs; a line that is not JSON is an error naming file and line."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise TaskError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append((line_no, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    return rows


def _prompt_text(value: object) -> str:
    """A prompt is a string, or a chat list whose last user message is the question (DAPO-Math-17k)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict) and isinstance(value[-1].get("content"), str):
        return value[-1]["content"]
    raise TypeError("must be a string or a list of chat messages")


def _field(row: dict, name: str) -> object:
    """``name`` may be dotted (``reward_model.ground_truth``) to reach nested fields."""
    value: object = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(name)
        value = value[part]
    return value


def load_file(path: str, prompt_field: str, answer_field: str, suffix: str = "") -> list[Problem]:
    """Every row of a JSONL/Parquet file as a Problem; TaskError naming file:line on any bad row."""
    p = Path(path)
    if p.suffix not in (".jsonl", ".json", ".parquet"):
        raise TaskError(f"{path}: a task file must be .jsonl or .parquet")
    if not p.is_file():
        raise TaskError(f"{path}: no such task file")
    problems = []
    for line_no, row in _read_rows(p):
        where = f"{path}:{line_no}"
        if not isinstance(row, dict):
            raise TaskError(f"{where}: a row must be a JSON object")
        try:
            prompt = _prompt_text(_field(row, prompt_field))
            answer = _field(row, answer_field)
        except KeyError as exc:
            raise TaskError(f"{where}: row has no field {exc.args[0]!r} (set prompt_field / answer_field)") from None
        except TypeError as exc:
            raise TaskError(f"{where}: field {prompt_field!r} {exc}") from None
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip() or not prompt.strip():
            raise TaskError(f"{where}: fields {prompt_field!r} and {answer_field!r} must be non-empty text")
        problems.append(Problem(prompt + suffix, _boxed_or_text(answer)))
    return problems


# --- task families: ``<prefix>:<spec>`` -------------------------------------------------------------
def _mathematics(spec: str, cfg):
    from .mathematics import MathematicsTask

    return MathematicsTask(spec, seed=cfg.seed, eval_size=cfg.eval_size, test_size=cfg.test_size,
                           planned=cfg.steps * cfg.prompts_per_step, suffix=cfg.prompt_suffix)


def _mathematics_recommended() -> dict[str, Any]:
    from .mathematics import RECOMMENDED

    return RECOMMENDED


@dataclass(frozen=True)
class Family:
    """A task family: ``build(spec, cfg)`` makes the task of ``<prefix>:<spec>``; ``recommended()``
    gives the config values it applies unless the preset or ``--set`` chose them."""

    build: Callable[[str, Any], Any]
    recommended: Callable[[], dict[str, Any]] = field(default=dict)
    example: str = ""


FAMILIES: dict[str, Family] = {
    "mathematics": Family(_mathematics, _mathematics_recommended, "mathematics:arithmetic/add_or_sub,mul"),
}
"""Task-name prefix -> family (``mathematics``: DeepMind's mathematics_dataset, trainer/mathematics.py)."""


def family_of(task: str) -> tuple[Family, str] | None:
    """(family, spec) for ``<prefix>:<spec>`` names, else None."""
    prefix, sep, spec = task.partition(":")
    return (FAMILIES[prefix], spec) if sep and prefix in FAMILIES else None


def recommended_settings(task: str) -> dict[str, Any]:
    """Config values the task's family recommends ({} for built-ins and files)."""
    found = family_of(task)
    return dict(found[0].recommended()) if found else {}


_PATHLIKE = re.compile(r"[/\\.]")


def build_task(cfg):
    """The task named by ``cfg.task``; TaskError (file and line, or the valid names) on any problem, before training."""
    found = family_of(cfg.task)
    if found is not None:
        return found[0].build(found[1], cfg)
    if cfg.task in GENERATORS:
        return GeneratedTask(cfg.task, cfg.seed, cfg.eval_size)
    if not _PATHLIKE.search(cfg.task):
        raise TaskError(f"unknown task {cfg.task!r}; choose a built-in ({', '.join(GENERATORS)}), a family "
                        f"({', '.join(f.example for f in FAMILIES.values())}) or a path to a .jsonl/.parquet file")
    rows = load_file(cfg.task, cfg.prompt_field, cfg.answer_field, cfg.prompt_suffix)
    if cfg.eval_task:
        return FileTask(rows, load_file(cfg.eval_task, cfg.prompt_field, cfg.answer_field, cfg.prompt_suffix)[: cfg.eval_size], cfg.seed)
    order = list(range(len(rows)))
    random.Random(f"{cfg.seed}/split").shuffle(order)
    n_held = min(cfg.eval_size, len(rows) // 5)
    held = [rows[i] for i in order[:n_held]]
    return FileTask([rows[i] for i in order[n_held:]], held, cfg.seed)
