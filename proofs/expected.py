"""The expected status of every (theorem, method), read from the method records: what the
mathematics says, written down in ``spec/methods/<name>.py`` (``disproved``, each with its reason)
before running the provers, so that ``dgpo prove`` fails when a result changes.

DGPO is expected to satisfy all eight obligations; why each baseline fails the ones it fails is
said next to the status in its record; proofs/REPORT.md shows the counterexample the engine found.
"""

from __future__ import annotations

from proofs.theorems import THEOREMS
from spec.methods import METHODS


def _table() -> dict[tuple[str, str], str]:
    for spec in METHODS.values():
        unknown = sorted(set(spec.disproved) - set(THEOREMS))
        if unknown:
            raise ValueError(f"spec/methods/{spec.name}.py: disproved names no obligation {unknown} "
                             f"(the obligations: {', '.join(THEOREMS)})")
    return {(theorem, name): spec.expected(theorem) for theorem in THEOREMS for name, spec in METHODS.items()}


#: (theorem, method) -> expected status
EXPECTED: dict[tuple[str, str], str] = _table()
