"""The one console script, ``dgpo``: a table from subcommand to the part that implements it.

Each subcommand's code lives with its part (``spec/``, ``proofs/``, ``dgpo_ref/``, ``trainer/``);
this module only dispatches, importing the part lazily so that ``dgpo derive`` never pulls in
torch and ``dgpo train`` never pulls in SymPy. Every subcommand is a ``main(argv) -> int``.

Errors a user can fix (bad flags, bad values, missing files) are raised as :class:`CliError`, or
reported by :class:`ArgumentParser`; either way the user sees one line ``dgpo <cmd>: error: ...``
and exit status 2, never a traceback. An OS error (read-only folder, disk full, a file where a
folder is expected) is reported the same way, naming the path and the cause.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# subcommand (possibly two words) -> "module:function"; the function takes argv and returns an int.
COMMANDS: dict[str, tuple[str, str]] = {
    "derive": ("spec.cli:derive_main", "print the step-by-step derivation of a method's weights"),
    "plot weights": ("spec.plot:main", "draw W(p) for every method across the regions"),
    "prove": ("proofs.cli:main", "run the proof obligations and write proofs/REPORT.md"),
    "gen-tests": ("spec.gentests:main", "generate tests/conformance/ from the spec (--check: verify)"),
    "conformance": ("dgpo_ref.conformance:main", "run the generated properties against any loss"),
    "train": ("trainer.cli:train_main", "RLVR training with a verified loss (default: dgpo)"),
    "eval": ("trainer.cli:eval_main", "evaluate a checkpoint (Avg@k, Pass@k)"),
    "plot run": ("trainer.plot:main", "draw a run folder's metrics.jsonl as PNG"),
    "verl-check": ("dgpo_ref.integrations.verl:check_main", "check that verl sees the dgpo losses"),
    "bench": ("bench.run_all:main", "run the benchmarks and write docs/performance.md"),
    "compare": ("bench.compare:main", "methods x seeds, paired, with bootstrap intervals (docs/evidence.md)"),
}


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def os_error_line(exc: OSError) -> str:
    """One line naming the path(s) and the cause of an OS error (``{path}: no space left on device``)."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    cause = (exc.strerror or str(exc)).lower()
    return f"{paths}: {cause}" if paths else cause


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as one line (no usage dump) and exits with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    rows = "\n".join(f"  {c.ljust(width)}  {h}" for c, (_, h) in COMMANDS.items())
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
    module, func = COMMANDS[name][0].split(":")
    try:
        entry = getattr(importlib.import_module(module), func)
    except ImportError as exc:
        print(f"dgpo {name}: error: this command needs a dependency that is not installed ({exc})",
              file=sys.stderr)
        return 2
    try:
        return int(entry(rest) or 0)
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


if __name__ == "__main__":  # `python -m dgpo_cli`: run the imported module, so that its CliError is the one raised
    import dgpo_cli

    sys.exit(dgpo_cli.main())
