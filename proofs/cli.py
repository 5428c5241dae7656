"""``dgpo prove [--method NAME|all] [--format text|json] [--check]``.

Runs the obligations, prints the theorem x method table (or the records as JSON), writes
proofs/REPORT.md when run for all methods, and exits 1 unless every status equals its expected
status. ``--check`` writes nothing and also exits 1 when REPORT.md is not what this run produces.
"""

from __future__ import annotations

from pathlib import Path

from clikit import ArgumentParser, CliError
from proofs import report
from proofs.run import run
from spec.methods import METHODS

REPORT = Path(__file__).resolve().parent / "REPORT.md"


def _parser() -> ArgumentParser:
    ap = ArgumentParser(prog="dgpo prove", description=__doc__.split("\n\n")[1])
    ap.add_argument("--method", default="all", help=f"all or one of: {', '.join(METHODS)}")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--check", action="store_true", help="do not write; fail if REPORT.md is stale")
    return ap


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.method != "all" and args.method not in METHODS:
        raise CliError(f"unknown method {args.method!r}; choose from: all, {', '.join(METHODS)}")
    if args.check and args.method != "all":
        raise CliError("--check compares the full report, so it needs --method all")
    methods = list(METHODS.values()) if args.method == "all" else [METHODS[args.method]]
    records = run(methods, progress=True)
    print(report.as_json(records) if args.format == "json" else report.table(records, markdown=False))
    status = 0
    for rec in report.mismatches(records):
        print(f"UNEXPECTED: {rec.theorem} / {rec.method} [{rec.instance}] is {rec.status}, "
              f"expected {rec.expected}")
        status = 1
    if args.method == "all":
        status |= _write_or_check(report.markdown(records), args.check)
    return status


def _write_or_check(text: str, check: bool) -> int:
    current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else None
    if check:
        if current != text:
            print(f"{REPORT.name} is stale: run `dgpo prove --method all` and commit it")
            return 1
        return 0
    if current != text:
        REPORT.write_text(text, encoding="utf-8")
    return 0
