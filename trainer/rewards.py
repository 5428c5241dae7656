"""Verifiable rewards: ``REWARDS[name](completion, answer) -> float`` in {0.0, 1.0}.

No reward ever evaluates model text as code. ``number`` is pure string work (regular expressions
and ``decimal.Decimal`` on at most 64 digits). ``math`` calls math-verify, which parses LaTeX and
expressions with SymPy; SymPy's ``parse_expr``/``sympify`` run ``eval``, so (1) text that could
reach Python objects (``__``, ``import``, ``lambda``, ``eval``, ...) scores 0 before parsing, and
(2) the call runs in a separate worker process with a wall-clock timeout (math-verify's own timeout
uses signals, which only work on the main thread), killed and restarted when it overruns, so
``10**10**10`` or deeply nested braces cost at most the timeout and score 0. A completion longer
than ``MAX_CHARS`` scores 0 without being parsed.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

MAX_CHARS = 100_000
"""Completions (and answers) longer than this score 0 unparsed."""
MATH_TIMEOUT_S = 5.0
"""Wall-clock limit for one math-verify comparison in the worker process."""
START_TIMEOUT_S = 120.0
"""Wall-clock limit for the worker to import math-verify and say ready (a dead worker fails at once)."""

_NUMBER = re.compile(r"[-\u2212]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")
"""A number in running text: thousands separators only in groups of three ("1,234,567"), so "1,2"
is the two numbers 1 and 2; a minus is "-" or U+2212 ("−4", as typeset)."""
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_UNSAFE = re.compile(r"__|\b(?:import|lambda|eval|exec|compile|open|getattr|setattr|globals|locals|vars|"
                     r"breakpoint|input|system|subprocess|builtins)\b")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces, scanned iteratively), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def canonical_number(text: str) -> Decimal | None:
    """``text`` as a plain decimal (sign, "$...$", U+2212 minus and valid thousands groups allowed), or None."""
    s = text.strip().replace(" ", "").replace("\u2212", "-").lstrip("+")
    if s.startswith("$") and s.endswith("$"):
        s = s[1:-1]
    if "," in s:
        if not _GROUPED.fullmatch(s):
            return None
        s = s.replace(",", "")
    if not re.fullmatch(r"-?\d{1,64}(?:\.\d{1,64})?", s):
        return None
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover (the pattern admits only plain decimals)
        return None


def extract_answer(completion: str) -> str | None:
    """The content of the last \\boxed{}, else the last number in the text, else None."""
    boxed = last_boxed(completion)
    if boxed is not None:
        return boxed
    found = _NUMBER.findall(completion)
    return found[-1] if found else None


def number_reward(completion: str, answer: str) -> float:
    """1.0 if the final number (or \\boxed{} content) equals ``answer`` as a decimal, else 0.0."""
    if len(completion) > MAX_CHARS or len(answer) > MAX_CHARS:
        return 0.0
    got, want = extract_answer(completion), canonical_number(answer)
    if got is None:
        return 0.0
    if want is None:  # a non-numeric answer: exact text match of the boxed content
        return float(got.strip() == answer.strip())
    value = canonical_number(got)
    return float(value is not None and value == want)


# --- math-verify in a worker process --------------------------------------------------------------
_FORM = (re.compile(r"\d+(?:\.\d+)?"),                                   # numeric literals
         re.compile(r"\*\*|[-+*/^\u2212\u00d7\u00f7]|\\(?:frac|dfrac|tfrac|cdot|times|div)\b"),  # operators
         re.compile(r"[(\[]"))                                             # opening brackets


def form(text: str) -> tuple[int, int, int]:
    """(numeric literals, operators, opening brackets) in ``text``: how much of it is still to evaluate."""
    return tuple(len(p.findall(text)) for p in _FORM)


def no_less_evaluated(gold: str, pred: str) -> bool:
    """Whether ``pred`` is written at least as far evaluated as ``gold``: no more numeric literals,
    operators or brackets. "288 + -297 - (2 - 3 - 12) - (0 + 2)" is equal to the answer 2, but it
    is the question, not an answer."""
    return all(p <= g for p, g in zip(form(pred), form(gold)))


def _shown(parsed) -> str:
    """The text math-verify extracted (the last string of its parse), else the first value as text."""
    texts = [x for x in parsed if isinstance(x, str)]
    return texts[-1] if texts else (str(parsed[0]) if parsed else "")


def _math_worker(conn) -> None:  # runs in the child process
    import logging

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # we time out from outside
    conn.send("ready")
    while True:
        gold, pred, final = conn.recv()
        try:
            g, p = parse(gold, parsing_timeout=None), parse(pred, parsing_timeout=None)
            ok = bool(p) and verify(g, p, timeout_seconds=None) and (not final or no_less_evaluated(_shown(g), _shown(p)))
        except Exception:  # noqa: BLE001 (any parser failure is a wrong answer)
            ok = False
        conn.send(bool(ok))


class _MathVerifier:
    """One long-lived worker process; restarted after a timeout or a crash."""

    def __init__(self, timeout_s: float = MATH_TIMEOUT_S):
        self.timeout_s, self.proc, self.conn = timeout_s, None, None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_math_worker, args=(child,), daemon=True)
        self.proc.start()
        if not self._ready(START_TIMEOUT_S):
            code = self.proc.exitcode
            self._stop()
            why = (f"it exited with status {code}" if code is not None else f"not ready in {START_TIMEOUT_S:.0f} s")
            raise RuntimeError(f"the math-verify worker process did not start ({why}); a script that calls "
                               f"REWARDS['math'] must do so under `if __name__ == '__main__':` (the worker is "
                               f"spawned and re-imports the script)")

    def _ready(self, timeout_s: float) -> bool:
        """Wait for the worker's "ready", but stop at once when it dies: a script without a main guard
        makes the spawned child re-run the script, which fails in seconds, not at the timeout."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.conn.poll(0.1):
                try:
                    return self.conn.recv() == "ready"
                except (EOFError, OSError):
                    return False
            if not self.proc.is_alive():
                return False
        return False

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
        self.proc = self.conn = None

    def __call__(self, gold: str, pred: str, final: bool = False) -> bool:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        try:
            self.conn.send((gold, pred, final))
            if self.conn.poll(self.timeout_s):
                return bool(self.conn.recv())
        except (EOFError, OSError, BrokenPipeError):
            pass
        self._stop()
        return False


_VERIFIER = _MathVerifier()


def math_reward(completion: str, answer: str, final: bool = False) -> float:
    """math-verify equivalence of ``answer`` (gold, parsed first) and the completion, in a worker;
    ``final``: and the completion's answer no less evaluated than the gold (:func:`no_less_evaluated`)."""
    if len(completion) > MAX_CHARS or len(answer) > MAX_CHARS:
        return 0.0
    if _UNSAFE.search(completion) or _UNSAFE.search(answer):
        return 0.0
    gold = answer if "\\boxed" in answer or answer.startswith("$") else f"${_python_powers(answer)}$"
    return float(_VERIFIER(*_percent_on_both_or_neither(gold, completion), final))


_POWER = re.compile(r"\*\*\s*(\d+|[A-Za-z]\w*|\([^()]*\))")


def _python_powers(answer: str) -> str:
    """``x**2`` (SymPy's and Python's power, as mathematics_dataset writes answers) as LaTeX ``x^{2}``:
    math-verify reads a plain answer as LaTeX, where ``x**2 - x - 2`` parses as 2."""
    return _POWER.sub(r"^{\1}", answer)


def math_final_reward(completion: str, answer: str) -> float:
    """``math``, and the answer must be written out: no more numeric literals, operators or brackets
    than the gold answer (for tasks whose question is itself an expression equal to the answer)."""
    return math_reward(completion, answer, final=True)


_PERCENT = re.compile(r"\\?%")


def _percent_on_both_or_neither(gold: str, pred: str) -> tuple[str, str]:
    """math-verify reads ``400\\%`` as 4: with a percent sign on one side only, it is dropped from
    both, so "400%" matches 400 and never 4 (with signs on both sides both are read alike)."""
    if ("%" in gold) != ("%" in pred):
        return _PERCENT.sub("", gold), _PERCENT.sub("", pred)
    return gold, pred


REWARDS: dict[str, Callable[[str, str], float]] = {"number": number_reward, "math": math_reward,
                                                   "math-final": math_final_reward}
"""Reward name -> ``fn(completion, answer) -> float``."""
