"""Task ``mathematics:<module>[/<submodule>,...]``: DeepMind's mathematics_dataset, generated on the fly.

The problems come from the PyPI package ``mathematics-dataset`` 1.0.1 (Saxton et al., ICLR 2019; the
``mathematics`` extra, never vendored), called the way its own ``generate.py`` calls it:

* **training**: the module's *train* generators under upstream's three difficulty levels (the entropy
  range cut in thirds, as ``generate_to_file --train_split`` makes train-easy / -medium / -hard). The
  schedule: the first third of the run's planned problems (``steps × prompts_per_step``) is easy, the
  second medium, the rest hard (``difficulty_level``). A run stopped early by ``max_minutes`` has seen
  the earlier levels only: set ``steps`` to what the time allows.
* **held-out**: ``val`` (``eval_size``) and ``interpolation`` (``test_size``) from the *interpolation*
  generators (the same difficulty as training's upper range), disjoint from each other; and, where the
  chosen submodules have them, ``extrapolation`` (``test_size``) from the *extrapolation* generators
  (larger numbers, longer expressions than anything in training).
* no held-out question is ever a training question: a training draw whose question text is held out
  is drawn again.
* each submodule contributes equally: problem ``j`` of a split comes from submodule ``j mod S``,
  training problem ``i`` from one drawn by its own seed.

Determinism: upstream draws from the *global* ``random`` and ``numpy.random`` generators (and SymPy's
``randprime`` from ``sympy.core.random``'s); every draw here seeds all three from (task, seed, split,
index). Upstream also picks from Python sets whose order follows the string hash and ``id()``: the
generation runs in a worker process started with ``PYTHONHASHSEED=0`` (``Worker``), and entities
are hashed by creation order (``order_entities``). So problem ``i`` is the same in every process (a
resumed run, ``dgpo eval``), and the trainer's own random streams are untouched. The worker builds
the held-out splits once per task and serves training problems in chunks of 64 as the run asks.

The three upstream fixes (SymPy, NumPy 2, entity order) live in the next section, each tested to be
still needed (tests/test_mathematics_task.py).

Questions and answers are upstream's text; upstream drops questions over 160 and answers over 30
characters, and so does this module. The prompt is the question plus ``prompt_suffix``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .tasks import Problem, TaskError

PACKAGE = "mathematics-dataset==1.0.1"
LEVELS = ("easy", "medium", "hard")
"""Upstream's train-easy / -medium / -hard: level ``k`` draws entropy from the k-th third of the range."""
EXTRA_SUFFIXES = ("", "_big", "_longer", "_more", "_more_samples")
"""Upstream names an extrapolation generator after its train generator plus one of these
(``add_or_sub`` -> ``add_or_sub_big``, ``sort`` -> ``sort_more``, ``conversion`` -> ``conversion``)."""
MAX_DRAWS = 50
"""Draws per wanted problem before giving up (duplicates, over-long questions, held-out collisions)."""

RECOMMENDED = {
    "reward": "math-final",
    "max_new_tokens": 160,
    "system_prompt": "You are a calculator. Reply with only the final answer in \\boxed{}, no explanation.",
    "prompt_suffix": " Give the final answer in \\boxed{}.",
}
"""Config values this task applies unless the preset or ``--set`` gives them (trainer/config.py,
``build_config``). ``math-final``: the answers are integers, decimals, fractions and surds (``-4/11``,
``3*sqrt(2)``), compared as values, and written out: an arithmetic question is itself an expression
equal to its answer, and under ``math`` the first 30-minute run learned to copy the question back
("288 + -297 - (2 - 3 - 12) - (0 + 2)" for 2): 131 of its 143 right held-out answers after 10
iterations were unevaluated (docs/trainer.md). The wording and length, measured greedy on SmolLM2-135M-Instruct
(50 val + 50 extrapolation arithmetic problems, docs/trainer.md): with only the suffix the model opens
"To solve this problem, ..." and its median answer is 139 tokens (37 % still running at 192); with
this system turn the median is 32 tokens and 69-77 % finish within 160 (of the rest, about half end
in an exact loop and the others ramble: docs/trainer.md counts them); 16 or 64 tokens would cut most
answers."""


class MathematicsError(TaskError):
    """A task name the package cannot serve; the message lists the valid names."""


# --- the upstream package and its two compatibility fixes -----------------------------------------
def patch_sympy() -> None:
    """mathematics_dataset 1.0.1 imports ``base_solution_linear`` from ``sympy.solvers.diophantine``,
    which SymPy >= 1.6 no longer exports (it lives in ``sympy.solvers.diophantine.diophantine``).
    Setting the attribute back before the import is the whole fix. (The module is fetched with
    ``import_module``: the attribute ``sympy.solvers.diophantine`` is the *function* diophantine.)"""
    import importlib

    dio = importlib.import_module("sympy.solvers.diophantine")
    if not hasattr(dio, "base_solution_linear"):
        from sympy.solvers.diophantine.diophantine import base_solution_linear

        dio.base_solution_linear = base_solution_linear


def numpy_compat():
    """NumPy as ``mathematics_dataset.sample.polynomials`` was written for (NumPy < 1.24): it calls
    ``ndarray.itemset`` and ``np.object``, both gone in NumPy 2 (every polynomial, calculus and composed
    algebra question goes through it). Returned as a stand-in for that one module's ``np`` global:
    NumPy itself is untouched, its ``zeros``/``empty`` arrays get ``itemset`` back."""
    import types

    import numpy as np

    class ItemsetArray(np.ndarray):
        def itemset(self, index, value):
            self[index] = value

    class Compat(types.ModuleType):
        object = object

        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def zeros(*args, **kwargs):
            return np.zeros(*args, **kwargs).view(ItemsetArray)

        @staticmethod
        def empty(*args, **kwargs):
            return np.empty(*args, **kwargs).view(ItemsetArray)

    return Compat("numpy")


@functools.cache
def upstream():
    """``mathematics_dataset.modules.modules`` and ``generate_settings``, imported with both fixes."""
    try:
        import mathematics_dataset  # noqa: F401
    except ImportError:
        raise MathematicsError(f"task 'mathematics:...' needs the package {PACKAGE} "
                               f"(pip install -e '.[mathematics]')") from None
    patch_sympy()
    from mathematics_dataset import generate_settings
    from mathematics_dataset.modules import modules
    from mathematics_dataset.sample import polynomials

    if "object" not in vars(polynomials.np):  # NumPy >= 1.24 (itemset went in 2.0): the stand-in covers both
        polynomials.np = numpy_compat()
    order_entities()
    return modules, generate_settings


_ENTITY_SEQ = [itertools.count()]


def order_entities() -> None:
    """Make upstream's composed questions reproducible: ``util/composition.expand_entities`` puts the
    question's entities in a ``set`` and shuffles ``list(set)``, so their order before the shuffle
    follows ``id()`` (memory addresses) and the same seed gives different questions. Hashing an
    entity by its creation number within the current draw (``seeded`` restarts the count) fixes it."""
    from mathematics_dataset.util import composition

    if getattr(composition.Entity, "_dgpo_ordered", False):
        return
    init = composition.Entity.__init__

    def numbered_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._dgpo_seq = next(_ENTITY_SEQ[0])

    composition.Entity.__init__ = numbered_init
    composition.Entity.__hash__ = lambda self: self._dgpo_seq
    composition.Entity._dgpo_ordered = True


def _entropy_fn(level: int, levels: int = len(LEVELS)) -> Callable[[tuple], tuple]:
    """Upstream's ``generate._make_entropy_fn``: the ``level``-th of ``levels`` slices of an entropy range."""
    def restrict(range_: tuple) -> tuple:
        low, length = range_[0], range_[1] - range_[0]
        return (low + level / levels * length, low + (level + 1) / levels * length)

    return restrict


def generators(module: str) -> dict[str, dict[str, Callable]]:
    """``{"easy"|"medium"|"hard"|"interpolation"|"extrapolation": {submodule: generator}}`` of ``module``."""
    modules, _ = upstream()
    mod = modules.all_[module]
    out = {name: mod.train(_entropy_fn(k)) for k, name in enumerate(LEVELS)}
    out["interpolation"] = mod.test()
    out["extrapolation"] = mod.test_extra()
    return out


def extrapolation_names(submodules: list[str], extra: dict[str, Callable]) -> list[str]:
    """The extrapolation generators of the chosen train submodules (upstream name + a suffix)."""
    return [e for e in extra for s in submodules if any(e == s + suffix for suffix in EXTRA_SUFFIXES)]


# --- seeded drawing ----------------------------------------------------------------------------------
@contextmanager
def seeded(key: str) -> Iterator[None]:
    """Seed ``random``, ``numpy.random`` and SymPy's generator from ``key``; restore them afterwards."""
    import numpy as np
    import sympy.core.random as sympy_random

    digest = hashlib.sha256(key.encode()).digest()
    _ENTITY_SEQ[0] = itertools.count()
    saved = random.getstate(), np.random.get_state(), sympy_random.rng.getstate()
    random.seed(digest)
    np.random.seed(int.from_bytes(digest[:4], "little"))
    sympy_random.rng.seed(digest[4:])
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        sympy_random.rng.setstate(saved[2])


def draw(generator: Callable) -> tuple[str, str] | None:
    """One (question, answer) from an upstream generator, or None if over upstream's length limits."""
    _, settings = upstream()
    problem = generator()
    question, answer = str(problem.question), str(problem.answer)
    if len(question) > settings.MAX_QUESTION_LENGTH or len(answer) > settings.MAX_ANSWER_LENGTH:
        return None
    return question, answer


# --- the task ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A parsed task name: the module and the chosen submodules (all when none are named)."""

    module: str
    submodules: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"mathematics:{self.module}/{','.join(self.submodules)}"


def parse(spec: str) -> Spec:
    """``arithmetic`` or ``arithmetic/add_or_sub,mul`` -> Spec; MathematicsError listing the valid names."""
    modules, _ = upstream()
    module, _, subs = spec.partition("/")
    if module not in modules.all_:
        raise MathematicsError(f"unknown mathematics module {module!r}; choose from {', '.join(sorted(modules.all_))}")
    valid = list(modules.all_[module].test())
    chosen = [s.strip() for s in subs.split(",")] if subs else valid
    bad = [s for s in chosen if s not in valid]
    if bad or not chosen:
        raise MathematicsError(f"unknown submodule(s) {', '.join(map(repr, bad)) or repr(subs)} of mathematics "
                               f"module {module!r}; choose from {', '.join(valid)}")
    return Spec(module, tuple(dict.fromkeys(chosen)))


@functools.lru_cache(maxsize=8)
def heldout_splits(spec: Spec, seed: int, eval_size: int, test_size: int) -> dict[str, tuple[tuple[str, str], ...]]:
    """``{"val", "interpolation"[, "extrapolation"]}`` -> (question, answer) pairs, distinct questions.
    With ``test_size`` 0 (e.g. ``dgpo compare``'s tuning runs) only ``val``, as for the other tasks."""
    gens = generators(spec.module)
    inter = _distinct(gens["interpolation"], list(spec.submodules), eval_size + test_size, f"{spec.name}/{seed}/interpolation")
    splits = {"val": inter[:eval_size]}
    if test_size:
        splits["interpolation"] = inter[eval_size:]
    extra = extrapolation_names(list(spec.submodules), gens["extrapolation"])
    if extra and test_size:
        splits["extrapolation"] = _distinct(gens["extrapolation"], extra, test_size, f"{spec.name}/{seed}/extrapolation")
    return splits


def _distinct(gens: dict[str, Callable], names: list[str], size: int, key: str) -> tuple[tuple[str, str], ...]:
    """``size`` pairs with distinct questions, round-robin over ``names``, from one seeded stream."""
    found: dict[str, tuple[str, str]] = {}
    with seeded(key):
        for j in range(MAX_DRAWS * size):
            if len(found) == size:
                break
            pair = draw(gens[names[j % len(names)]])
            if pair is not None:
                found.setdefault(pair[0], pair)
    if len(found) < size:
        raise MathematicsError(f"{key}: only {len(found)} distinct questions in {MAX_DRAWS * size} draws; "
                               f"ask for fewer (eval_size / test_size)")
    return tuple(found.values())


def difficulty_level(index: int, planned: int) -> int:
    """Level (0 easy, 1 medium, 2 hard) of training problem ``index`` of ``planned``: thirds of the run."""
    return min(len(LEVELS) - 1, len(LEVELS) * index // max(planned, 1))


class Generator:
    """The generating side of one task (runs in the worker process): held-out splits, then training
    problems by index, redrawn while their question is held out."""

    def __init__(self, spec: str, seed: int, eval_size: int, test_size: int, planned: int):
        self.spec, self.seed, self.planned = parse(spec), seed, planned
        self.gens = generators(self.spec.module)
        self.splits = heldout_splits(self.spec, seed, eval_size, test_size)
        self.held_questions = {q for pairs in self.splits.values() for q, _ in pairs}

    def train(self, index: int) -> tuple[str, str]:
        level = LEVELS[difficulty_level(index, self.planned)]
        subs = self.spec.submodules
        with seeded(f"{self.spec.name}/{self.seed}/train/{index}"):
            for _ in range(MAX_DRAWS):
                pair = draw(self.gens[level][subs[random.randrange(len(subs))]])
                if pair is not None and pair[0] not in self.held_questions:
                    return pair
        raise MathematicsError(f"{self.spec.name}: no training question outside the held-out splits in "
                               f"{MAX_DRAWS} draws (problem {index})")


def serve(inp=sys.stdin, out=None) -> None:
    """The worker's loop: one JSON request per line in, one JSON reply per line out."""
    out = out or sys.stdout
    sys.stdout = sys.stderr  # anything upstream prints must not reach the reply channel
    tasks: dict[tuple, Generator] = {}
    for line in inp:
        req = json.loads(line)
        try:
            key = tuple(req["task"])
            if key not in tasks:
                tasks[key] = Generator(*key)
            gen = tasks[key]
            if req["op"] == "splits":
                result: object = gen.splits
            else:
                result = [gen.train(i) for i in range(req["start"], req["start"] + req["count"])]
            reply = {"result": result}
        except MathematicsError as exc:
            reply = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 (an upstream failure: one line back, the worker lives on)
            reply = {"error": f"mathematics_dataset failed: {type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


class Worker:
    """The generator process, started with ``PYTHONHASHSEED=0``: upstream picks variable letters and
    symbols from Python sets of strings (``util/composition.py``), whose order follows the per-process
    string hash, so in-process generation would give a resumed run or ``dgpo eval`` other problems."""

    def __init__(self):
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONHASHSEED": "0",
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "trainer.mathematics"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def call(self, **request) -> object:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise MathematicsError(f"the mathematics_dataset worker process exited ({self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise MathematicsError(reply["error"])
        return reply["result"]


@functools.cache
def worker() -> Worker:
    """One worker per process, shared by every mathematics task (it caches their generators)."""
    return Worker()


class MathematicsTask:
    """Training problem ``i`` is a pure function of (task, seed, i, planned problems): resumable by index.
    Problems come from the worker process, training ones in chunks of ``CHUNK``."""

    CHUNK = 64

    def __init__(self, spec: str, *, seed: int, eval_size: int, test_size: int, planned: int, suffix: str = ""):
        self.key, self.suffix = [spec, seed, eval_size, test_size, planned], suffix
        self.planned = planned
        held = worker().call(op="splits", task=self.key)
        self.splits = {name: [self._as_problem(q, a) for q, a in pairs] for name, pairs in held.items()}
        self._chunks: dict[int, list[Problem]] = {}

    def _as_problem(self, question: str, answer: str) -> Problem:
        return Problem(question + self.suffix, answer)

    def train_problem(self, index: int) -> Problem:
        chunk = index // self.CHUNK
        if chunk not in self._chunks:
            if len(self._chunks) > 16:
                self._chunks.clear()
            pairs = worker().call(op="train", task=self.key, start=chunk * self.CHUNK, count=self.CHUNK)
            self._chunks[chunk] = [self._as_problem(q, a) for q, a in pairs]
        return self._chunks[chunk][index % self.CHUNK]

    def probe_problems(self) -> list[Problem]:
        """Problems whose prompts bound the rollout engine's prompt length: every held-out problem and
        64 training draws at each difficulty level (upstream caps a question at 160 characters)."""
        starts = [int(self.planned * (k + 0.5) / len(LEVELS)) for k in range(len(LEVELS))]
        per_level = [self.train_problem(s + i) for s in starts for i in range(self.CHUNK)]
        return [p for split in self.splits.values() for p in split] + per_level


if __name__ == "__main__":
    serve()
