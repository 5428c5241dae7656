"""Target 5: wall time of the project's generate-and-check commands.

Each command runs as a subprocess of this Python (its ``dgpo`` console script); a command whose
module is absent is reported as missing, not timed. ``prove`` and ``gen-tests`` are timed with
``--check``: the same derivations and proofs, but nothing in the working tree is rewritten (the
benchmark must not change files that other parts own). The conformance suite is the generated
tests under tests/conformance run by pytest against dgpo_ref, and ``dgpo conformance`` against the
compiled fast path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DGPO = [sys.executable, "-m", "dgpo_cli"]

COMMANDS = {  # label -> (module that must exist, argv)
    "dgpo prove --method all --check": ("proofs.cli", DGPO + ["prove", "--method", "all", "--check"]),
    "dgpo gen-tests --check": ("dgpo_conformance.gentests", DGPO + ["gen-tests", "--check"]),
    "pytest tests/conformance (dgpo_ref, all methods)": (
        "dgpo_conformance.properties", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/conformance"]),
    "dgpo conformance --impl dgpo_ref.fast:compiled_only": (
        "dgpo_conformance.runner", DGPO + ["conformance", "--impl", "dgpo_ref.fast:compiled_only", "--method", "dgpo"]),
}


def time_command(module: str, argv: list[str]) -> dict:
    if importlib.util.find_spec(module) is None:
        return {"status": "missing", "module": module}
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - t0
    tail = (out.stdout + out.stderr).strip().splitlines()[-1:] or [""]
    return {"status": "ok" if out.returncode == 0 else f"exit {out.returncode}", "seconds": round(seconds, 1),
            "last_line": tail[0][:200]}


def run(progress=None) -> dict:
    rows = {}
    for label, (module, argv) in COMMANDS.items():
        rows[label] = time_command(module, argv)
        if progress is not None:
            progress({label: rows[label]})
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
