"""The conformance draws do not depend on which modules the process has imported.

Hypothesis mines literals from every local module in ``sys.modules`` and mixes them into its draws, so
a derandomized conformance test drew other batches after an unrelated import (the report card's verl
cells changed in CI). ``dgpo_conformance.schema.hermetic_draws`` empties that pool; the generated
conftest applies it to every conformance test.
"""

import importlib
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from dgpo_conformance.schema import hermetic_draws


def _literals(offset: float) -> list[float]:
    """Literals a probe module holds, inside the drawn range, so that a mined pool would show up
    (each test its own: a module once imported stays in the pool for the rest of the session)."""
    return [round(offset + 37.25 * i, 2) for i in range(64)]


def _draws() -> list[float]:
    seen: list[float] = []

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(st.lists(st.floats(min_value=0.0, max_value=1e4), min_size=8, max_size=8))
    def probe(xs):
        seen.extend(xs)

    probe()
    return seen


def _import_probe_module(tmp_path, name: str, literals: list[float]) -> None:
    (tmp_path / f"{name}.py").write_text("VALUES = [" + ", ".join(map(repr, literals)) + "]\n")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_an_import_full_of_literals_leaves_the_draws_unchanged(tmp_path):
    literals = _literals(1000.125)
    with hermetic_draws():
        before = _draws()
    _import_probe_module(tmp_path, "dgpo_draws_probe_a", literals)
    with hermetic_draws():
        after = _draws()
    assert after == before
    assert not set(literals) & set(after)


def test_without_it_the_same_import_changes_the_draws(tmp_path):
    """The control: the probe would see the mined pool (if this fails, Hypothesis no longer mines local
    constants, or mines them elsewhere: check that hermetic_draws still patches the right hook)."""
    literals = _literals(3000.375)
    before = _draws()
    _import_probe_module(tmp_path, "dgpo_draws_probe_b", literals)
    after = _draws()
    assert set(literals) & set(after), "no probe literal was drawn: the mined pool is not where hermetic_draws looks"
    assert after != before
