"""Machine-checked proof obligations for every method of ``spec.METHODS``.

- ``proofs.theorems.THEOREMS``: the eight obligations (name -> Theorem), numbered as in issue 2.
- ``proofs.run.run(methods, theorems=None)``: the records (theorem, method, instance, status,
  expected, how, counterexample); ``proofs.run.prove(theorem, spec)`` for one pair (mutants).
- ``proofs.expected.EXPECTED[(theorem, method)]``: the expected status; CI (``dgpo prove --check``)
  guarantees every record has it, so :func:`holds` is what a test generator may rely on.
- ``proofs.report``: the terminal table, ``proofs/REPORT.md`` and JSON; ``proofs.cli.main``: ``dgpo prove``.

How claims are decided is described in ``proofs/engine.py`` and docs/spec.md.
"""

from __future__ import annotations


def holds(theorem: str, method: str) -> bool:
    """Whether ``theorem`` is proved for ``method`` (by the checked expected table)."""
    from proofs.expected import EXPECTED

    return EXPECTED[(theorem, method)] == "proved"
