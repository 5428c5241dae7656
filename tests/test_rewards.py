"""Rewards never run model text, and pathological completions score 0 within the timeout."""

import time
from pathlib import Path

import pytest

from trainer.rewards import MATH_TIMEOUT_S, REWARDS, extract_answer, last_boxed, number_reward


@pytest.mark.parametrize("completion, answer, want", [
    ("The answer is 42.", "42", 1.0),
    ("42", "42", 1.0),
    ("12 + 30 = 42", "42", 1.0),
    ("12 + 30 = 41", "42", 0.0),
    ("so \\boxed{1,234} and then 7", "1234", 1.0),
    ("-17", "-17", 1.0),
    ("17", "-17", 0.0),
    ("3.50", "3.5", 1.0),
    ("no number here", "3", 0.0),
    ("", "3", 0.0),
    ("the roots are 1,2", "12", 0.0),  # not a thousands separator: the numbers 1 and 2
    ("the roots are 1,2", "2", 1.0),
    ("about 1,234,567 people", "1234567", 1.0),
    ("x = \u22124", "-4", 1.0),  # U+2212, the typeset minus
    ("x = \u22124", "4", 0.0),
    ("\\boxed{\u22124}", "-4", 1.0),
    ("-4", "\u22124", 1.0),
    ("\\boxed{1,2}", "12", 0.0),
    ("\\boxed{400\\%}", "4", 0.0),
])
def test_number_reward(completion, answer, want):
    assert number_reward(completion, answer) == want


def test_last_boxed_balances_braces():
    assert last_boxed("a \\boxed{\\frac{1}{2}} b") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{1} then \\boxed{2}") == "2"
    assert last_boxed("\\boxed{unclosed") is None
    assert extract_answer("x = 3, y = 4") == "4"


def test_math_reward_equivalence():
    assert REWARDS["math"]("so the answer is \\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert REWARDS["math"]("so the answer is \\boxed{\\frac{1}{3}}", "0.5") == 0.0
    assert REWARDS["math"]("The answer is $x^2+2x+1$", "(x+1)^2") == 1.0


@pytest.mark.parametrize("completion, answer, math, final", [
    # the question copied back is equal to the answer, but it is not an answer (seen in training)
    ("288 + -297 - (2 - 3 - 12) - (0 + 2)", "2", 1.0, 0.0),
    ("The final answer is -4218975 / -843795", "5", 1.0, 0.0),
    ("\\boxed{(-343)/(-98)*(880/(-28))/(-11)}", "10", 1.0, 0.0),
    ("Expand: \\boxed{(x + 1)*(x - 2)}", "x**2 - x - 2", 1.0, 0.0),
    # written out: as right as under math
    ("\\boxed{2}", "2", 1.0, 1.0),
    ("The answer is \\boxed{-877408.3}", "-877408.3", 1.0, 1.0),
    ("\\boxed{-\\frac{4}{11}}", "-4/11", 1.0, 1.0),
    ("\\boxed{-4/11}", "-4/11", 1.0, 1.0),
    ("\\boxed{x^2 - x - 2}", "x**2 - x - 2", 1.0, 1.0),
    ("\\boxed{9 - 6\\sqrt{2}}", "-6*sqrt(2) + 9", 1.0, 1.0),
    # wrong stays wrong
    ("\\boxed{3}", "2", 0.0, 0.0),
])
def test_math_final_wants_the_answer_written_out(completion, answer, math, final):
    assert REWARDS["math"](completion, answer) == math
    assert REWARDS["math-final"](completion, answer) == final


def test_form_counts_literals_operators_and_brackets():
    from trainer.rewards import form, no_less_evaluated

    assert form("288 + -297 - (2 - 3 - 12)") == (5, 5, 1)
    assert form("-\\frac{4}{11}") == form("-4/11") == (2, 2, 0)
    assert form("2**10") == form("2^{10}") == (2, 1, 0)
    assert no_less_evaluated("-4/11", "-4/11") and not no_less_evaluated("2", "10/5")
    assert not no_less_evaluated("x**2 - x - 2", "(x + 1)*(x - 2)")


def test_math_reward_never_divides_by_a_percent_sign_on_one_side():
    assert REWARDS["math"]("so \\boxed{400\\%}", "4") == 0.0
    assert REWARDS["math"]("so \\boxed{400\\%}", "400") == 1.0
    assert REWARDS["math"]("so \\boxed{40\\%}", "40\\%") == 1.0
    assert REWARDS["math"]("so \\boxed{0.4}", "40\\%") == 0.0


INJECTIONS = ["__import__('os').system('touch {p}')", "\\boxed{__import__('os').system('touch {p}')}",
              "$(lambda: __import__('os').system('touch {p}'))()$", "eval(\"open('{p}', 'w')\")"]


@pytest.mark.parametrize("name", sorted(REWARDS))
@pytest.mark.parametrize("template", INJECTIONS)
def test_no_reward_executes_model_text(name, template, tmp_path):
    marker = Path(tmp_path) / "pwned"
    text = template.replace("{p}", str(marker))
    assert REWARDS[name](text, "0") == 0.0
    assert REWARDS[name]("0", text) == 0.0  # nor a hostile reference answer
    assert REWARDS[name](text, text) in (0.0, 1.0)  # compared as text, never run
    assert not marker.exists()


PATHOLOGICAL = {
    "10 MB string": "1" * 10_000_000,
    "tower of powers": "10**10**10",
    "latex tower": "\\boxed{10^{10^{10^{10^{10}}}}}",
    "nested braces": "\\boxed{" + "{" * 20_000 + "1" + "}" * 20_000 + "}",
    "nested parentheses": "$" + "(" * 20_000 + "1" + ")" * 20_000 + "$",
}


@pytest.mark.parametrize("name", sorted(REWARDS))
@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_completion_scores_zero_within_timeout(name, case):
    REWARDS[name]("\\boxed{1}", "1")  # warm the worker so start-up time is not counted
    t = time.perf_counter()
    assert REWARDS[name](PATHOLOGICAL[case], "3") == 0.0
    assert time.perf_counter() - t < MATH_TIMEOUT_S + 3.0
    assert REWARDS[name]("\\boxed{3}", "3") == 1.0  # the worker still answers afterwards
