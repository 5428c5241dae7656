"""Drafts of the methods verl 0.9.1 and TRL 1.16 register that the spec lacks (issue 14, item 3).

Standalone SymPy drafts, the input for turning each into a method record: per-token weight on ∇π
and surrogate in the spec's symbols, hyper-parameters with the libraries' defaults and domains,
sample values for the proof engine, and worked examples computed with the libraries' own torch
code (``spec/drafts/library_examples.py`` recomputes them). Nothing outside ``spec/drafts`` and
the tests imports them, so ``METHODS`` and every generated file are unchanged.

``DRAFTS`` maps a draft name to its module. The library survey: docs/library-losses.md.
"""

from __future__ import annotations

from spec.drafts import dppo_kl, dppo_tv, gpg, sapo, tis, vespo

DRAFTS = {mod.SPEC.name: mod for mod in (sapo, vespo, gpg, dppo_tv, dppo_kl, tis)}
