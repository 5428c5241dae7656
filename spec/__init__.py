"""The SymPy spec: the single source of truth for every method's weight on ∇π.

Notation (shared/DESIGN.md, docs/methods.md): ``p`` = π_θ(token), ``p_old`` = π_old(token),
``r = p/p_old``, ``A`` the advantage. A method is its weight ``W`` on ∇π per region; ``V = p·W`` is
its weight on ∇log π; its surrogate ``J`` (written with the stop-gradient ``sg``) has dJ/dp = W.

API (what ``proofs/``, ``dgpo derive``, ``dgpo plot weights`` and ``dgpo_conformance/gentests.py`` use)
---------------------------------------------------------------------------------------------------
Symbols (:mod:`spec.symbols`): ``p, p_old, r, A, eps_low, eps_high, n, m, beta1, beta2, dual_clip``
(SymPy symbols with assumptions), ``ratio = p/p_old``, ``SYMBOLS`` (name -> symbol), ``sg`` (a
SymPy Function with derivative 0; ``sg(number)`` evaluates to the number), ``strip_sg(expr)``.

Regions (:mod:`spec.core`): ``REGIONS = ("IN", "LN", "HP", "LP", "HN")``; ``CASES`` the
(region, sign of A) pairs that carry a gradient (IN with both signs); ``JUNCTIONS`` (outer region,
breakpoint name, sign) where a region meets IN; ``region_condition(region)`` (SymPy condition on
r and A; breakpoints belong to IN), ``LEFT = 1 - eps_low``, ``RIGHT = 1 + eps_high``.

Registry: ``METHODS`` maps each method's name to its :class:`~spec.core.MethodSpec` (one module per
method in ``spec/methods/``, listed in ``spec/methods/__init__.py``), with

- ``spec.hparams``: tuple of :class:`~spec.hparams.HParam` (``name``, ``symbol``, ``default``,
  ``constraint`` text, ``condition()`` as SymPy, ``check(value)`` -> error message or None,
  ``exact(value)`` -> SymPy number, ``integer``, ``optional``); ``spec.defaults()``,
  ``spec.subs_values({...})`` ({symbol: exact value}; ``dual_clip=None`` is ``sympy.oo``).
- per region: ``spec.W(region)`` (in p, p_old, hparams), ``spec.V(region)`` (= p·W),
  ``spec.V_r(region)`` (in r and hparams; also in p_old where a mask uses it, DPPO), ``spec.J(region)`` (with ``sg``),
  ``spec.J_value(region)`` (``sg`` removed), ``spec.J_r(region)``; ASPO's IN depends on the sign
  of A through a ``Piecewise`` on ``A``: ``spec.case(expr, sign)`` resolves it.
  The dual clip appears as ``Piecewise((r, r <= dual_clip), ...)`` / ``Min(.., dual_clip)``.
- ``spec.breakpoints()``: {"left": 1-eps_low, "right": 1+eps_high[, "dual_clip": dual_clip]} in r.
- ``spec.constants``: DGPO's ``C_left``, ``C_right`` (solved from continuity, see
  :mod:`spec.methods.dgpo`).
- ``spec.with_branch(region, Branch(W=..., J=...))``: a modified copy (mutants in tests).

Numbers (:mod:`spec.numeric`): ``expression(spec, region, sign, kind)`` (kind ``"V_r"``, ``"W"``,
``"J_value"``; ``sg`` removed, A resolved), ``pycode(...)`` (plain Python via ``sympy.pycode``;
pass ``math.inf`` for ``dual_clip=None``), ``lambdified(...)`` (float function, hparams as keywords).

Family (:mod:`spec.family`): ``CLAIMS``, DGPO's n = -1, m = 1 -> GPPO, n = 0 -> pg, m -> oo -> pg.

Which theorems hold per method is not decided here but proved in ``proofs/``:
``proofs.run(methods)`` returns the records, ``proofs.expected.EXPECTED[(theorem, method)]``.
"""

from spec.core import CASES, JUNCTIONS, LEFT, REGIONS, RIGHT, Branch, MethodSpec, region_condition
from spec.methods import METHODS
from spec.symbols import SYMBOLS, sg, strip_sg

__all__ = ["CASES", "JUNCTIONS", "LEFT", "METHODS", "REGIONS", "RIGHT", "SYMBOLS", "Branch",
           "MethodSpec", "region_condition", "sg", "strip_sg"]
