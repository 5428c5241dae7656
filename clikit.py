"""Command-line helpers every part shares (a leaf: imports nothing of the project).

:class:`CliError` is a user error (printed by ``dgpo`` as one line ``dgpo <cmd>: error: ...``, exit
status 2); :class:`ArgumentParser` reports its own errors the same way; :func:`os_error_line` names
the path and the cause of an OS error. ``dgpo_cli`` (the dispatcher) and every subcommand import
them from here, so that no part imports ``dgpo_cli``.
"""

from __future__ import annotations

import argparse


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
