"""``dgpo derive [--method NAME] [--format text|markdown|latex|json] [--n N --m M --eps-low X ...]``.

Prints the step-by-step derivation of a method's weights (default: dgpo). Hyper-parameter values
are checked against their domains (docs/methods.md) before any work and substituted after solving.
"""

from __future__ import annotations

import json

import sympy as sp

from clikit import ArgumentParser, CliError
from spec.core import REGIONS, MethodSpec
from spec.derive import Step, constants, derivation
from spec.methods import HPARAMS, METHODS

MAX_EXPONENT = 10_000
"""Largest integer hyper-parameter (``n``, ``m``) ``dgpo derive`` substitutes: SymPy forms constants
like (1 − eps_low)^n exactly, so the time grows with n (about 1 s at 10^4, 3 s at 10^5, 38 s at 10^6
on the 2-core CPU, after 3 s of imports); the derivation without a value holds for every n."""


def _number(name: str, text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise CliError(f"--{name.replace('_', '-')}: not a number: {text!r}") from None


def _parser() -> ArgumentParser:
    ap = ArgumentParser(prog="dgpo derive", description=__doc__.split("\n\n")[1])
    ap.add_argument("--method", default="dgpo", help=f"one of: {', '.join(METHODS)}")
    ap.add_argument("--format", choices=("text", "markdown", "latex", "json"), default="text")
    for name, h in HPARAMS.items():
        ap.add_argument(h.flag, dest=name, type=str, default=None,
                        help=f"{h.constraint}")
    return ap


def _values(spec: MethodSpec, args) -> dict[str, float | int | None]:
    """The hyper-parameters given on the command line, checked against the method's domains."""
    out = {}
    for name in HPARAMS:
        raw = getattr(args, name)
        if raw is None:
            continue
        if name not in spec.hparam_names:
            raise CliError(f"{HPARAMS[name].flag}: {name} is not a hyper-parameter of "
                           f"{spec.name} (it has: {', '.join(spec.hparam_names)})")
        value = _number(name, raw)
        problem = spec.hparam(name).check(value)
        if problem:
            raise CliError(problem)
        if spec.hparam(name).integer and value > MAX_EXPONENT:
            raise CliError(f"--{name}: at most {MAX_EXPONENT} for dgpo derive (an exact power that large takes "
                           f"minutes), got {value:g}; leave it out for the derivation that holds for every {name}")
        out[name] = int(value) if spec.hparam(name).integer else value
    return out


def _expr_json(e: sp.Basic) -> dict[str, str]:
    return {"text": sp.sstr(e), "latex": sp.latex(e), "srepr": sp.srepr(e)}


def _as_json(spec: MethodSpec, steps: list[Step], subs: dict, given: dict) -> str:
    at = (lambda e: e.subs(subs)) if subs else (lambda e: e)
    doc = {
        "method": spec.name,
        "title": spec.title,
        "hparams": {h.name: {"default": h.default, "domain": h.constraint, "value": given.get(h.name)}
                    for h in spec.hparams},
        "constants": {k: _expr_json(v) for k, v in constants(spec, subs).items()},
        "weights": {region: {"W": _expr_json(at(spec.W(region))), "V": _expr_json(at(spec.V_r(region))),
                             "J": _expr_json(at(spec.J(region)))} for region in REGIONS},
        "steps": [{"title": s.title, "note": s.note, **_expr_json(s.expr)} for s in steps],
    }
    return json.dumps(doc, indent=2)


def _as_text(spec: MethodSpec, steps: list[Step], fmt: str) -> str:
    lines = {"text": [f"{spec.name}: {spec.title}", f"  {spec.summary}", ""],
             "markdown": [f"# {spec.name}: {spec.title}", "", spec.summary, ""],
             "latex": [f"% {spec.name}: {spec.title}", f"% {spec.summary}"]}[fmt]
    for i, s in enumerate(steps, 1):
        note = f"  [{s.note}]" if s.note else ""
        if fmt == "text":
            lines += [f"{i:2d}. {s.title}{note}", f"    {sp.sstr(s.expr)}"]
        elif fmt == "markdown":
            lines += [f"{i}. {s.title}{note}", "", f"   $$ {sp.latex(s.expr)} $$", ""]
        else:
            lines += [f"% {i}. {s.title}{note}", f"\\[ {sp.latex(s.expr)} \\]"]
    return "\n".join(lines)


def derive_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.method not in METHODS:
        raise CliError(f"unknown method {args.method!r}; choose from: {', '.join(METHODS)}")
    spec = METHODS[args.method]
    given = _values(spec, args)
    subs = {spec.hparam(k).symbol: spec.hparam(k).exact(v) for k, v in given.items()}
    steps = derivation(spec, subs)
    print(_as_json(spec, steps, subs, given) if args.format == "json" else _as_text(spec, steps, args.format))
    return 0
