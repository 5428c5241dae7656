"""The one console script, ``dgpo``: a table from subcommand to the part that implements it.

Each subcommand's code lives with its part (``spec/``, ``proofs/``, ``dgpo_conformance/``,
``dgpo_ref/``, ``trainer/``); this module only dispatches, importing the part lazily so that
``dgpo derive`` never pulls in torch and ``dgpo train`` never pulls in SymPy. Every subcommand is a ``main(argv) -> int``.

Errors a user can fix (bad flags, bad values, missing files) are raised as :class:`clikit.CliError`,
or reported by :class:`clikit.ArgumentParser`; either way the user sees one line
``dgpo <cmd>: error: ...`` and exit status 2, never a traceback. An OS error (read-only folder, disk full, a file where a
folder is expected) is reported the same way, naming the path and the cause.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from importlib import metadata

from clikit import ArgumentParser, CliError, os_error_line  # noqa: F401 (re-exported: the parts' names)

# subcommand (possibly two words) -> ("module:function", the pyproject extra it needs, help).
# The function takes argv and returns an int; the extra is what a missing import asks to install.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "derive": ("spec.cli:derive_main", "spec", "print the step-by-step derivation of a method's weights"),
    "plot weights": ("spec.plot:main", "spec", "draw W(p) for every method across the regions"),
    "prove": ("proofs.cli:main", "spec", "run the proof obligations and write proofs/REPORT.md"),
    "gen-tests": ("dgpo_conformance.gentests:main", "spec", "generate tests/conformance/ from the spec (--check: verify)"),
    "conformance": ("dgpo_conformance.runner:main", "conformance", "run the generated properties against any loss"),
    "train": ("trainer.cli:train_main", "trainer", "RLVR training with a verified loss (default: dgpo)"),
    "eval": ("trainer.cli:eval_main", "trainer", "evaluate a checkpoint (Avg@k, Pass@k)"),
    "plot run": ("trainer.plot:main", "trainer", "draw a run folder's metrics.jsonl as PNG"),
    "verl-check": ("dgpo_ref.integrations.verl:check_main", "verl",
                   "check that verl sees the dgpo losses and that a verl config keeps them"),
    "bench": ("bench.run_all:main", "trainer", "run the benchmarks and write docs/performance.md"),
    "compare": ("bench.compare:main", "trainer", "methods x seeds, paired, with bootstrap intervals (docs/evidence.md)"),
}


def _requirements(extra: str) -> list[str]:
    """Distribution names dgpo[extra] requires, read from the installed package's metadata (which
    pyproject.toml generates); [] when dgpo is not installed (e.g. run from a bare checkout)."""
    try:
        requires = metadata.requires("dgpo") or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for req in requires:
        spec, _, marker = req.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            name = re.match(r"[A-Za-z0-9._-]+", spec.strip()).group(0)
            inner = re.search(r"\[(.*)\]", spec) if name == "dgpo" else None
            names += [n for e in inner.group(1).split(",") for n in _requirements(e.strip())] if inner else [name]
    return names


def _not_installed(extra: str) -> list[str]:
    """The distributions of dgpo[extra] missing from this environment."""
    missing = []
    for name in _requirements(extra):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def _missing_extra(name: str, extra: str, what: str) -> int:
    print(f"dgpo {name}: error: needs the '{extra}' extra, which is not installed here ({what}): "
          f"pip install 'dgpo[{extra}]'", file=sys.stderr)
    return 2


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  {c.ljust(width)}  {h}" for c, (_, _, h) in COMMANDS.items())
    return f"usage: dgpo <command> [options]\n\ncommands:\n{rows}\n\n'dgpo <command> --help' for details."


def _resolve(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in COMMANDS:
            return name, list(argv[words:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    found = _resolve(argv)
    if found is None:
        print(f"dgpo: error: unknown command {' '.join(argv[:2])!r}; choose from: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    name, rest = found
    target, extra, _ = COMMANDS[name]
    # the base install is the torch-only core: every other part comes with its extra
    missing = _not_installed(extra)
    if missing:
        return _missing_extra(name, extra, f"missing: {', '.join(missing)}")
    module, func = target.split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except ModuleNotFoundError as exc:  # e.g. run from a checkout that was never pip-installed
        return _missing_extra(name, extra, f"no module {exc.name!r}")
    except CliError as exc:
        print(f"dgpo {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dgpo {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `dgpo derive | head`: the reader went away; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a folder that is a file, read-only, disk full, `ulimit -f`: one line
        print(f"dgpo {name}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m dgpo_cli` (the verl launch scripts): run the importable module, whose CliError is
    # the class the subcommands raise, not this __main__ copy's.
    import dgpo_cli

    sys.exit(dgpo_cli.main())
