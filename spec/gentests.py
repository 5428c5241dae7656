"""``dgpo gen-tests``: write ``tests/conformance/test_<method>.py`` from the spec (``--check``: verify).

For every method in :data:`spec.METHODS` the generated file holds, as plain Python that imports
torch, hypothesis and :mod:`dgpo_ref.conformance` (never SymPy):

- the hyper-parameters: exact defaults (``Fraction``) and domains, from ``spec.hparams``;
- ``V`` (weight on ∇log π, in the ratio ``r``) and the surrogate value ``J`` per (region, sign of
  A), printed from the spec's expressions by a SymPy code printer (``torch.*`` for functions);
- the breakpoints with the verdict on continuity there, taken from the proof obligations
  (``proofs.theorems.continuity``) at generation time; the dual clip's interior breakpoint is
  judged from the spec's one-sided limits;
- the bounds on ``V`` per case that the proofs establish (``boundedness``: 0 ≤ W ≤ 1/p_old,
  ``logit_bound``: V ≥ 0 and V ≤ 1 − eps_low on LN);
- one test per property, ``test_<property>_<method>``.

The output is deterministic: same spec, same bytes. ``--check`` compares the files on disk with a
fresh generation and exits 1 naming every file that differs, is missing or is stale.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from spec import symbols as S
from spec.core import CASES, JUNCTIONS, MethodSpec
from spec.methods import METHODS

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "conformance"
PROPERTIES = ("gradient", "value", "continuity", "bounds", "regions", "finiteness", "aggregation",
              "invariance", "dtypes")
PROPERTY_DOCS = {
    "gradient": "d loss/d log_prob = -A*V/N per token (token-mean), 0 off the mask.",
    "value": "the loss equals -sum(A*J)/N.",
    "continuity": "one-sided limits of V at each breakpoint: equal where continuous, the spec's jump elsewhere.",
    "bounds": "the per-token W lies within the bounds the proofs establish (BOUNDS).",
    "regions": "region/<R> metrics equal the spec's classification.",
    "finiteness": "p in [1e-30, 1], |log r| <= 1e3: no NaN, inf only where A*V overflows; padding gets 0.",
    "aggregation": "micro-batches with the global normalizer sum to the full batch.",
    "invariance": "permuting sequences, or tokens under token-mean, permutes the gradient, keeps the loss.",
    "dtypes": "float32 and bfloat16 inputs agree with float64 within per-dtype tolerances.",
}

LOG_P_OLD, LOG_R = sp.Symbol("log_p_old", real=True), sp.Symbol("log_r", real=True)
SIGN_NAME = {1: "pos", -1: "neg"}


class TorchCodePrinter(PythonCodePrinter):
    """Plain Python arithmetic (``r**(n + 1)``); functions of tensors as ``torch.*`` calls.

    Every variable is a float64 tensor at run time, so ``**``, ``*`` and comparisons broadcast.
    """

    def _print_log(self, expr):
        return f"torch.log({self._print(expr.args[0])})"

    def _print_exp(self, expr):
        return f"torch.exp({self._print(expr.args[0])})"

    def _fold(self, fn: str, args) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Min(self, expr):
        return self._fold("torch.minimum", sorted(expr.args, key=sp.default_sort_key))

    def _print_Max(self, expr):
        return self._fold("torch.maximum", sorted(expr.args, key=sp.default_sort_key))

    def _print_Piecewise(self, expr):
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        out = self._print(last)
        for value, cond in reversed(pieces):
            out = f"torch.where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Infinity(self, expr):
        return "torch.inf"


_PRINTER = TorchCodePrinter({"fully_qualified_modules": False, "standard": "python3"})


def torch_code(expr: sp.Expr) -> str:
    return _PRINTER.doprint(sp.sympify(expr))


def exact_literal(value) -> str:
    """An exact Python literal: ``Fraction(1, 5)``, ``2``, ``None``."""
    if value is None or value == sp.oo:
        return "None"
    q = sp.nsimplify(value, rational=True) if not isinstance(value, sp.Basic) else value
    q = sp.Rational(q)
    return str(q.p) if q.q == 1 else f"Fraction({q.p}, {q.q})"


# ---------------------------------------------------------------------------------------------
# What the spec says, per method
# ---------------------------------------------------------------------------------------------
def v_expr(spec: MethodSpec, region: str, sign: int) -> sp.Expr:
    """V in r and the hyper-parameters (stop-gradients removed, sign of A resolved)."""
    out = S.strip_sg(spec.case(spec.V_r(region), sign))
    _only(out, {S.r}, spec, f"V on {region}")
    return out


def j_expr(spec: MethodSpec, region: str, sign: int) -> sp.Expr:
    """J's value in r, log r and log p_old (CISPO's log p = log p_old + log r)."""
    out = S.strip_sg(spec.case(spec.J_r(region), sign))
    if out.has(sp.log):
        out = sp.expand_log(out, force=True).subs({sp.log(S.p_old): LOG_P_OLD, sp.log(S.r): LOG_R})
    _only(out, {S.r, LOG_R, LOG_P_OLD}, spec, f"J on {region}")
    return out


def _only(expr: sp.Expr, allowed: set, spec: MethodSpec, what: str) -> None:
    extra = expr.free_symbols - allowed - {h.symbol for h in spec.hparams}
    if extra:
        raise ValueError(f"{spec.name}: {what} = {expr} has unexpected symbols {sorted(map(str, extra))}")


def _claims(spec: MethodSpec, theorem: str) -> dict[str, tuple[bool, str]]:
    """Each claim of a proof obligation for this method: label -> (holds, how we know).

    A claim the engine cannot decide for symbolic n, m holds when the whole theorem is expected
    PROVED for the method (``dgpo prove --check`` verifies that per (n, m) instance); otherwise
    it is not relied upon.
    """
    from proofs import theorems
    from proofs.engine import PROVED
    from proofs.expected import EXPECTED
    from proofs.run import context

    ctx = context(spec)
    out = {}
    for claim in theorems.THEOREMS[theorem].claims(spec):
        outcome = claim.decide(ctx, {})
        if outcome is not None:
            out[claim.label] = (outcome.status == PROVED, f"{theorem}: {outcome.status}")
        elif EXPECTED.get((theorem, spec.name)) == PROVED:
            out[claim.label] = (True, f"{theorem}: proved per (n, m) instance")
        else:
            out[claim.label] = (False, f"{theorem}: undecided, not relied upon")
    return out


def _one_sided(expr: sp.Expr, at: sp.Expr, side: int) -> sp.Expr:
    """V just below (side -1) or above (+1) ``at``: r = at ± t with t > 0 decides the pieces, then t = 0."""
    t = sp.Symbol("t", positive=True)
    return sp.simplify(sp.piecewise_fold(expr.subs(S.r, at + side * t)).subs(t, 0))


def breakpoints(spec: MethodSpec) -> list[dict]:
    """Every breakpoint with the cases on each side and the verdict on V's continuity there."""
    points = spec.breakpoints()
    claims = _claims(spec, "continuity")
    out = []
    for region, name, sign in JUNCTIONS:
        label = f"W continuous at {region}|IN (r = {points[name]})"
        holds, how = claims[label]
        left, right = (region, "IN") if name == "left" else ("IN", region)
        out.append(dict(name=f"{name} ({region}|IN)", key=f"{name}_{region}", at=points[name], sign=sign,
                        left=left, right=right, continuous=holds, why=f"{label}: {how}"))
    if "dual_clip" in points:
        c = points["dual_clip"]
        for region, sign in CASES:
            v = v_expr(spec, region, sign)
            if region != "HN" or not v.has(S.dual_clip):
                continue  # the dual clip acts at r = c on HN (ASPO's cap on LP bends at r = 1/c)
            lo, hi = _one_sided(v, c, -1), _one_sided(v, c, 1)
            same = sp.simplify(lo - hi) == 0
            out.append(dict(name=f"dual_clip ({region})", key=f"dual_clip_{region}", at=c, sign=sign,
                            left=region, right=region, continuous=bool(same),
                            why=f"spec: V -> {lo} from below, {hi} from above r = dual_clip"))
    return out


def bounds(spec: MethodSpec) -> dict[tuple[str, int], tuple[sp.Expr, sp.Expr, list[str]]]:
    """Per case, the bounds on V the proofs establish: (lower, upper, reasons)."""
    bounded, logit = _claims(spec, "boundedness"), _claims(spec, "logit_bound")
    out = {}
    for region, sign in CASES:
        lo, hi, why = -sp.oo, sp.oo, []
        label = f"0 <= W*p_old <= 1 on {region} (A {'>' if sign > 0 else '<'} 0)"
        if bounded[label][0]:
            lo, hi = sp.S.Zero, S.r
            why.append(f"0 <= W <= 1/p_old ({bounded[label][1]})")
        if logit[f"V >= 0 on {region}"][0]:
            lo = sp.S.Zero
            why.append(f"V >= 0 ({logit[f'V >= 0 on {region}'][1]})")
        if region == "LN" and logit["V <= 1 - eps_low on LN"][0]:
            hi = sp.Min(hi, 1 - S.eps_low)
            why.append(f"V <= 1 - eps_low ({logit['V <= 1 - eps_low on LN'][1]})")
        out[(region, sign)] = (lo, hi, why or ["no bound proved"])
    return out


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def _case_name(region: str, sign: int, split: bool) -> str:
    return f"{region}_{SIGN_NAME[sign]}" if split else region


def _function(name: str, args: str, expr: sp.Expr, doc: str) -> list[str]:
    return [f"def {name}({args}):", f'    """{doc}"""', f"    return {torch_code(expr)}", "", ""]


def _cases(spec: MethodSpec, get) -> tuple[dict, dict]:
    """(case -> function name, function name -> expression), merging IN's signs when equal."""
    exprs = {case: get(spec, *case) for case in CASES}
    split = exprs[("IN", 1)] != exprs[("IN", -1)]
    names = {case: _case_name(case[0], case[1], split and case[0] == "IN") for case in CASES}
    return names, {names[c]: e for c, e in exprs.items()}


def render(spec: MethodSpec) -> str:
    """The generated test module for one method (deterministic)."""
    hp_names = [h.name for h in spec.hparams]
    kw = "*, " + ", ".join(hp_names)
    lines = [
        f'"""Conformance tests for `{spec.name}`: {spec.title}.',
        "",
        f"GENERATED by `dgpo gen-tests` from spec.METHODS[{spec.name!r}] (spec/methods/"
        f"{spec.name}.py) and the proof",
        "obligations in proofs/. Do not edit: change the spec, then regenerate with `dgpo gen-tests`;",
        "`dgpo gen-tests --check` (run by scripts/test.sh) fails when this file is stale.",
        "",
        f"{spec.summary}.",
        "",
        "Run against another implementation: `dgpo conformance --impl MODULE:FUNCTION "
        f"--method {spec.name}`.",
        '"""',
        "",
        "from fractions import Fraction",
        "",
        "import torch",
        "from hypothesis import given",
        "from hypothesis import strategies as st",
        "",
        "from dgpo_ref import conformance as C",
        "",
        f"METHOD = {spec.name!r}",
        "",
        "#: hyper-parameters: exact default and open domain (spec/hparams.py)",
        "HPARAMS = {",
    ]
    for h in spec.hparams:
        upper = None if h.upper == float("inf") else h.upper
        lines.append(f"    {h.name!r}: C.HParam(default={exact_literal(h.default)}, "
                     f"lower={exact_literal(h.lower)}, upper={exact_literal(upper)}, "
                     f"integer={h.integer}, optional={h.optional}, constraint={h.constraint!r}),")
    lines += ["}", "", "",
              "# V = p*W, the weight on grad log p, in the ratio r, per region (and sign of A where it matters)",
              ""]
    v_names, v_exprs = _cases(spec, v_expr)
    for name, expr in v_exprs.items():
        lines += _function(f"V_{name}", f"r, {kw}", expr, f"V on {name}: {expr}")
    lines += ["# J, the surrogate's value (stop-gradients removed); log_p_old = old_log_prob", ""]
    j_names, j_exprs = _cases(spec, j_expr)
    for name, expr in j_exprs.items():
        lines += _function(f"J_{name}", f"r, log_r, log_p_old, {kw}", expr, f"J on {name}: {expr}")
    lines += ["# breakpoints in r (None when absent: dual_clip=None)", ""]
    bps = breakpoints(spec)
    done = set()
    for bp in bps:
        fn = f"at_{bp['key'].split('_')[0]}" if not bp["key"].startswith("dual_clip") else "at_dual_clip"
        bp["fn"] = fn
        if fn in done:
            continue
        done.add(fn)
        body = torch_code(bp["at"])
        if bp["at"] == S.dual_clip:
            body = "None if dual_clip is None else dual_clip"
        lines += [f"def {fn}({kw}):", f"    return {body}", "", ""]
    lines += ["#: where V may change formula, the cases on each side, and whether V is continuous there",
              "BREAKPOINTS = ("]
    for bp in bps:
        lines += [f"    # {bp['why']}",
                  f"    C.Breakpoint({bp['name']!r}, {bp['fn']}, sign={bp['sign']}, left={bp['left']!r}, "
                  f"right={bp['right']!r}, continuous={bp['continuous']}),"]
    lines += [")", "", "", "# bounds on V = p*W per case, as the proofs establish them", ""]
    b_rows = []
    for (region, sign), (lo, hi, why) in bounds(spec).items():
        name = f"bounds_{region}_{SIGN_NAME[sign]}"
        lines += [f"def {name}(r, {kw}):", f'    """{"; ".join(why)}"""',
                  f"    return {torch_code(lo)}, {torch_code(hi)}", "", ""]
        b_rows.append(f"    ({region!r}, {sign}): {name},")
    lines += ["SPEC = C.MethodSpec(", "    name=METHOD,", "    hparams=HPARAMS,", "    V={"]
    lines += [f"        ({r!r}, {s}): V_{v_names[(r, s)]}," for r, s in CASES]
    lines += ["    },", "    J={"]
    lines += [f"        ({r!r}, {s}): J_{j_names[(r, s)]}," for r, s in CASES]
    lines += ["    },", "    breakpoints=BREAKPOINTS,", "    bounds={"]
    lines += ["    " + row for row in b_rows]
    lines += ["    },", ")", ""]
    for prop in PROPERTIES:
        lines += ["", "@C.profile()", "@given(data=st.data())",
                  f"def test_{prop}_{spec.name}(impl, data):",
                  f'    """{PROPERTY_DOCS[prop]}"""',
                  f"    C.{prop}(impl, SPEC, data)", ""]
    return "\n".join(lines)


CONFTEST = '''"""Fixture plumbing of the generated conformance tests (GENERATED by `dgpo gen-tests`; do not edit).

``impl`` is the loss under test: ``dgpo_ref.policy_loss`` with the module's METHOD by default, or
the function named by DGPO_CONFORMANCE_IMPL (see dgpo_ref/conformance.py and `dgpo conformance`).
"""

import pytest

from dgpo_ref import conformance as C


@pytest.fixture(scope="module")
def impl(request):
    return C.implementation_from_env(request.module.METHOD)
'''


def generate(methods: Mapping[str, MethodSpec] | None = None) -> dict[str, str]:
    """File name -> content for every method, plus the conftest."""
    methods = METHODS if methods is None else methods
    files = {f"test_{name}.py": render(spec) for name, spec in methods.items()}
    files["conftest.py"] = CONFTEST
    files["__init__.py"] = ""
    return files


def check(out_dir: Path, files: Mapping[str, str]) -> list[str]:
    """Problems with ``out_dir`` relative to a fresh generation (empty: up to date)."""
    problems = []
    for name, text in files.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text() != text:
            diff = difflib.unified_diff(path.read_text().splitlines(), text.splitlines(), lineterm="", n=0)
            first = next((ln for ln in list(diff)[2:] if ln[:1] in "+-"), "")
            problems.append(f"{path}: differs from a fresh generation (first change: {first[:100]})")
    for path in sorted(out_dir.glob("test_*.py")):
        if path.name not in files:
            problems.append(f"{path}: stale (no such method in spec.METHODS)")
    return problems


def main(argv: Sequence[str]) -> int:
    """``dgpo gen-tests [--check] [--out DIR]``"""
    from dgpo_cli import ArgumentParser

    parser = ArgumentParser(prog="dgpo gen-tests", description=(
        "Generate tests/conformance/test_<method>.py from the spec. With --check, write nothing and "
        "exit 1 if the files on disk differ from a fresh generation."))
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default: {OUT_DIR})")
    args = parser.parse_args(list(argv))
    files = generate()
    if args.check:
        problems = check(args.out, files)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("dgpo gen-tests --check: generated tests are out of date; run `dgpo gen-tests`",
                  file=sys.stderr)
            return 1
        print(f"dgpo gen-tests --check: {len(files)} files in {args.out} are up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
    for path in sorted(args.out.glob("test_*.py")):
        if path.name not in files:
            path.unlink()
    print(f"dgpo gen-tests: wrote {len(files)} files to {args.out}")
    return 0
