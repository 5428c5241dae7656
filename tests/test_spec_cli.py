"""``dgpo derive`` and ``dgpo plot weights``: output, JSON schema, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import dgpo_cli
from spec import METHODS, REGIONS
from spec import symbols as S

ROOT = Path(__file__).resolve().parents[1]


def dgpo(*argv: str) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh interpreter (slow: used sparingly)."""
    return subprocess.run([sys.executable, "-c", "import sys, dgpo_cli; sys.exit(dgpo_cli.main())", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def run_inproc(capsys, *argv: str) -> tuple[int, str, str]:
    """The same dispatcher, in this process (fast)."""
    try:
        code = dgpo_cli.main(list(argv))
    except SystemExit as exc:  # argparse's own errors exit from inside the subcommand
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, needle", [
    (["--n", "0"], "positive integer"),
    (["--n", "1.5"], "positive integer"),
    (["--m", "-2"], "positive integer"),
    (["--eps-low", "1.2"], "0 < eps_low < 1"),
    (["--eps-high", "0"], "eps_high > 0"),
    (["--method", "nope"], "unknown method"),
    (["--method", "pg", "--n", "2"], "not a hyper-parameter of pg"),
    (["--method", "grpo", "--dual-clip", "0.5"], "dual_clip > 1"),
    (["--n", "abc"], "not a number"),
    (["--n", "1e7"], "--n: at most 10000 for dgpo derive"),  # ran for minutes before the bound
    (["--m", "10001"], "--m: at most 10000"),
])
def test_derive_bad_input_one_line_exit_2(capsys, argv, needle):
    code, _, err = run_inproc(capsys, "derive", *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgpo derive: error:"), err
    assert needle in lines[0]


def test_derive_bad_input_from_the_console_has_no_traceback():
    out = dgpo("derive", "--n", "1.5")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == ["dgpo derive: error: n must be a positive integer (n >= 1, integer), got 1.5"]


def test_derive_json_schema_and_constants():
    out = dgpo("derive", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["constants"]) == {"C_left", "C_right"}
    for const in doc["constants"].values():
        assert {"srepr", "latex"} <= set(const)
    left = sp.sympify(eval(doc["constants"]["C_left"]["srepr"], vars(sp)))  # srepr round-trips
    want = 1 / (S.p_old ** (S.n + 1) * (1 - S.eps_low) ** S.n)
    assert sp.simplify(left - want) == 0
    assert set(doc["weights"]) == set(REGIONS)
    for w in doc["weights"].values():
        assert {"W", "V", "J"} <= set(w)
    assert doc["steps"] and all({"title", "latex", "srepr"} <= set(s) for s in doc["steps"])
    assert set(doc["hparams"]) == {"eps_low", "eps_high", "n", "m"}


def test_derive_substitutes_values_after_solving(capsys):
    doc = json.loads(run_inproc(capsys, "derive", "--format", "json", "--n", "2", "--eps-low", "0.5")[1])
    left = eval(doc["constants"]["C_left"]["srepr"], vars(sp))
    assert sp.simplify(left - 4 / S.p_old**3) == 0  # 1/(p_old^3 * 0.5^2)


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_derive_formats_show_the_solve_and_family(capsys, fmt):
    code, out, _ = run_inproc(capsys, "derive", "--format", fmt)
    assert code == 0
    assert "solve for C_left" in out and "GPPO" in out and "FAILS" not in out


@pytest.mark.parametrize("method", [m for m in METHODS if m != "dgpo"])
def test_derive_every_method(capsys, method):
    code, out, _ = run_inproc(capsys, "derive", "--method", method)
    assert code == 0 and "FAILS" not in out and "dJ/dp = W: checked" in out


def test_plot_weights_writes_a_png(capsys, tmp_path):
    target = tmp_path / "w.png"
    assert run_inproc(capsys, "plot", "weights", "--out", str(target))[0] == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000


def test_plot_curves_come_from_the_spec():
    from spec.plot import P_OLD, curve

    ps = [0.1, 0.5, 0.9]
    assert curve("dgpo", -1, "LN", "HN", ps)[0] == pytest.approx((0.1 / P_OLD) ** 1 / 0.8 / P_OLD)
    assert curve("pg", 1, "LP", "HP", ps) == pytest.approx([1 / P_OLD] * 3)


def test_plot_bad_out_is_one_line_exit_2(capsys, tmp_path):
    code, _, err = run_inproc(capsys, "plot", "weights", "--out", str(tmp_path / "w.jpg"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "must end in .png" in err
