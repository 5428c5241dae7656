"""Tasks: questions with verifiable answers. Built-in seeded arithmetic generators, task families
named by a prefix (``mathematics:<module>``), or local files.

A task is a training stream of :class:`Problem` and held-out ``splits``: ``val`` (evaluated during
training; the one to tune on) and ``test`` (reported). Built-in generators draw the held-out sets
first and never give a training problem that is also held out. Files are JSONL (one object per
line) or Parquet with configurable prompt/answer fields; every row is checked before training and a
bad row is an error naming the file and the line (row): not UTF-8, not JSON, a missing field, an
answer that is a non-finite number, a prompt holding a chat-template control token. Repeated rows
are dropped, a prompt given two different answers is an error naming both rows, and training rows
whose prompt is also in ``eval_task`` are dropped: a file task's ``report`` counts what was dropped
(``config.json`` records it as ``task_report``), and an empty held-out set is an error. A task family (``FAMILIES``) may recommend
config values (its reward, its completion length) that apply unless the user set them.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    prompt: str
    answer: str
    where: str = field(default="", compare=False)
    """``file:line`` of a row read from a file (error messages only)."""


class TaskError(ValueError):
    """A task that cannot be loaded: the message names the file and line."""


# --- built-in generators ----------------------------------------------------------------------------
_ADD2 = (10, 99)  # both operands of add2
_ADD_DIGITS, _MUL_DIGITS = 3, 2  # operand digits of arith-mixed's + and -, and of its *


def _add2(rng: random.Random) -> Problem:
    a, b = rng.randint(*_ADD2), rng.randint(*_ADD2)
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
    digits = _MUL_DIGITS if op == "*" else _ADD_DIGITS
    a, b = _operand(rng, digits), _operand(rng, digits)
    return Problem(f"What is {a} {op} {b}? Answer with just the number.", str(_OPS[op](a, b)))


def _copy_digit(rng: random.Random) -> Problem:
    """The smoke preset's task: one token a random tiny model gets right often enough, at a low
    temperature, to learn from (trainer/config.py, ``_SMOKE``); the item number makes 9000 prompts."""
    n, d = rng.randint(100, 999), rng.randint(0, 9)
    return Problem(f"Item {n}. Copy the digit: {d}", str(d))


GENERATORS: dict[str, Callable[[random.Random], Problem]] = {"add2": _add2, "arith-mixed": _arith_mixed,
                                                             "copy-digit": _copy_digit}
"""Built-in task name -> function drawing one problem from a ``random.Random``."""
DISTINCT: dict[str, int] = {"add2": (_ADD2[1] - _ADD2[0] + 1) ** 2,
                            "arith-mixed": 2 * (10**_ADD_DIGITS) ** 2 + (10**_MUL_DIGITS) ** 2,
                            "copy-digit": 900 * 10}
"""Built-in task name -> how many distinct problems it can draw (every operand pair gives its own prompt)."""
MAX_DRAWS = 1000
"""Draws before a training problem that is not held out must have turned up (each succeeds with
probability >= 1/2 under the eval_size limit, so reaching this means a bug, not bad luck)."""


def check_eval_size(name: str, eval_size: int, test_size: int = 0) -> None:
    """At most half of a generator's problems may be held out (``eval_size + test_size``): the held-out
    draws then end after about 0.7 x DISTINCT draws, and a training draw needs fewer than 2 tries on
    average (instead of a hang)."""
    limit = DISTINCT[name] // 2
    if eval_size + test_size > limit:
        raise TaskError(f"eval_size={eval_size} + test_size={test_size} is too large for task {name!r}: it has "
                        f"{DISTINCT[name]} distinct problems and at most half ({limit}) may be held out")


class GeneratedTask:
    """Problem ``i`` of the training stream is a pure function of (seed, i): resumable by index.

    ``splits`` holds the held-out sets, in order: ``val`` (``eval_size`` problems, evaluated during
    training and the only split used for tuning) and ``test`` (``test_size`` problems, reported).
    Both are drawn from their own fixed streams, independent of ``seed``, so runs with different
    seeds or losses are scored on the very same problems (paired comparisons); they are disjoint
    from each other, and no training problem is in either."""

    def __init__(self, name: str, seed: int, eval_size: int, test_size: int = 0):
        check_eval_size(name, eval_size, test_size)
        self.name, self.seed, self._draw = name, seed, GENERATORS[name]
        taken: set[str] = set()
        self.splits = {"val": self._distinct(f"{name}/val", eval_size, taken)}
        if test_size:
            self.splits["test"] = self._distinct(f"{name}/test", test_size, taken)
        self._held_prompts = taken

    def _distinct(self, stream: str, size: int, taken: set[str]) -> list[Problem]:
        rng, out = random.Random(stream), []
        for _ in range(100 * size):
            p = self._draw(rng)
            if p.prompt not in taken:
                taken.add(p.prompt)
                out.append(p)
                if len(out) == size:
                    break
        if len(out) < size:
            raise TaskError(f"task {self.name!r}: found only {len(out)} distinct held-out problems of {size}")
        return out

    def train_problem(self, index: int) -> Problem:
        rng = random.Random(f"{self.name}/{self.seed}/train/{index}")
        for _ in range(MAX_DRAWS):
            p = self._draw(rng)
            if p.prompt not in self._held_prompts:
                return p
        raise TaskError(f"task {self.name!r}: no training problem outside the held-out set in {MAX_DRAWS} draws")


class FileTask:
    """Rows of a JSONL/Parquet file, shuffled per epoch with the seed; index ``i`` is resumable.
    ``splits``: ``val`` and (when not empty) ``test`` held-out rows, as for generated tasks."""

    def __init__(self, rows: list[Problem], splits: dict[str, list[Problem]], seed: int, report: dict | None = None):
        if not rows:
            raise TaskError("the task has no training rows")
        self.rows, self.seed, self.report = rows, seed, dict(report or {})
        self.splits = {k: v for k, v in splits.items() if v or k == "val"}

    def train_problem(self, index: int) -> Problem:
        epoch, pos = divmod(index, len(self.rows))
        order = list(range(len(self.rows)))
        random.Random(f"{self.seed}/epoch/{epoch}").shuffle(order)
        return self.rows[order[pos]]


def heldout_problems(task) -> list[Problem]:
    """Every held-out problem of ``task``, all splits together."""
    return [p for split in task.splits.values() for p in split]


def prompt_probe(task: GeneratedTask | FileTask) -> list[Problem]:
    """Problems whose prompts bound the rollout engine's prompt length: every row of a file task (vLLM
    rejects a prompt over ``max_model_len``, and a long one would have its completion cut), a family
    task's own probe, or a generator's held-out set and first 256 training draws (its prompts are
    bounded by construction)."""
    if hasattr(task, "probe_problems"):
        return task.probe_problems()
    if isinstance(task, FileTask):
        return task.rows + heldout_problems(task)
    return heldout_problems(task) + [task.train_problem(i) for i in range(256)]


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
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TaskError(f"{path}:{line_no}: not valid UTF-8 (byte {raw[exc.start]:#04x} at column "
                                f"{exc.start + 1}); save the file as UTF-8") from None
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
        if isinstance(answer, float) and not math.isfinite(answer):
            raise TaskError(f"{where}: field {answer_field!r} is {answer!r}, not a finite number")
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip() or not prompt.strip():
            raise TaskError(f"{where}: fields {prompt_field!r} and {answer_field!r} must be non-empty text")
        _check_control_tokens(where, prompt + suffix)
        problems.append(Problem(prompt + suffix, _boxed_or_text(answer), where))
    return problems


CONTROL_TOKENS = re.compile(r"<\|[^|<>\s]{1,64}\|>|<(?:start|end)_of_turn>|\[/?INST\]|<</?SYS>>")
"""Chat-template control tokens (ChatML/Qwen/SmolLM ``<|im_end|>``, Llama 3 ``<|eot_id|>``, Gemma,
Llama 2): in a prompt they would close the user turn and let a task file write the assistant's."""


def _check_control_tokens(where: str, prompt: str) -> None:
    found = CONTROL_TOKENS.search(prompt)
    if found:
        raise TaskError(f"{where}: the prompt holds the chat-template control token {found.group()!r}; "
                        f"remove it (it would end the user turn)")


def _same_answer(a: str, b: str) -> bool:
    from .rewards import canonical_number

    x, y = canonical_number(a), canonical_number(b)
    return a.strip() == b.strip() or (x is not None and x == y)


def dedupe(problems: list[Problem]) -> tuple[list[Problem], int]:
    """The first row of each prompt and how many repeats were dropped; a repeat with a different
    answer is a TaskError naming both rows (which answer is right cannot be guessed)."""
    first: dict[str, Problem] = {}
    for p in problems:
        seen = first.setdefault(p.prompt, p)
        if not _same_answer(seen.answer, p.answer):
            raise TaskError(f"{seen.where} and {p.where}: the same prompt has two answers ({seen.answer!r} and "
                            f"{p.answer!r}); keep one of the rows")
    return list(first.values()), len(problems) - len(first)


def warn(message: str) -> None:
    """A one-line note on stderr (the run goes on)."""
    print(f"dgpo: warning: {message}", file=sys.stderr)


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
        return GeneratedTask(cfg.task, cfg.seed, cfg.eval_size, cfg.test_size)
    if not _PATHLIKE.search(cfg.task):
        raise TaskError(f"unknown task {cfg.task!r}; choose a built-in ({', '.join(GENERATORS)}), a family "
                        f"({', '.join(f.example for f in FAMILIES.values())}) or a path to a .jsonl/.parquet file")
    rows, dropped = dedupe(load_file(cfg.task, cfg.prompt_field, cfg.answer_field, cfg.prompt_suffix))
    report = {"rows": len(rows) + dropped, "duplicates_dropped": dropped}
    if cfg.eval_task:
        held, report["eval_duplicates_dropped"] = dedupe(
            load_file(cfg.eval_task, cfg.prompt_field, cfg.answer_field, cfg.prompt_suffix))
        val, test = held[: cfg.eval_size], held[cfg.eval_size : cfg.eval_size + cfg.test_size]
        if not val:
            raise TaskError(f"eval_task {cfg.eval_task}: no rows to evaluate on; give a file with at least one "
                            f"row, or leave eval_task empty to hold out a fifth of {cfg.task}")
        held_prompts = {p.prompt for p in val + test}
        train = [p for p in rows if p.prompt not in held_prompts]
        report["eval_overlap_removed"] = len(rows) - len(train)
        if not train:
            raise TaskError(f"{cfg.task}: every one of its {len(rows)} distinct prompts is also in eval_task "
                            f"{cfg.eval_task}; nothing is left to train on")
    else:
        # val and test from one fixed shuffle (independent of the seed: every run sees the same
        # held-out rows), each at most a fifth of the file, so that most rows stay for training
        order = list(range(len(rows)))
        random.Random("split").shuffle(order)
        n_val = min(cfg.eval_size, len(rows) // 5)
        n_test = min(cfg.test_size, len(rows) // 5)
        if not n_val:
            raise TaskError(f"{cfg.task}: {len(rows)} distinct row(s) give no held-out row (a fifth of the rows, "
                            f"at most eval_size, is held out); give at least 5 rows, or a held-out file with "
                            f"eval_task")
        val, test = [rows[i] for i in order[:n_val]], [rows[i] for i in order[n_val : n_val + n_test]]
        train = [rows[i] for i in order[n_val + n_test :]]
    _warn_dropped(cfg, report)
    return FileTask(train, {"val": val, "test": test}, cfg.seed, report)


def _warn_dropped(cfg, report: dict) -> None:
    notes = [(cfg.task, report["duplicates_dropped"], "repeated row(s) dropped (same prompt and answer)"),
             (cfg.eval_task, report.get("eval_duplicates_dropped", 0), "repeated row(s) dropped (same prompt "
                                                                       "and answer)"),
             (cfg.task, report.get("eval_overlap_removed", 0), f"training row(s) dropped: their prompt is in "
                                                               f"eval_task {cfg.eval_task}")]
    for source, count, what in notes:
        if count:
            warn(f"{source}: {count} {what}")
