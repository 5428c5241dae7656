"""The method registry: one module per method, each defining ``SPEC``, the method's one record.

``METHODS`` maps name -> record; ``HPARAMS`` every hyper-parameter any method takes, by name (the
first record's, for the flag and the help text). Adding a method: a module here and a row below.
"""

from __future__ import annotations

from spec.core import MethodSpec
from spec.hparams import HParam
from spec.methods import (
    aspo,
    ce_gppo,
    cispo,
    dapo,
    dgpo,
    dppo_kl,
    dppo_tv,
    gpg,
    gppo,
    grpo,
    pg,
    sapo,
    tis,
    vespo,
)

#: registry name -> spec object, in the order of docs/methods.md
METHODS: dict[str, MethodSpec] = {
    mod.SPEC.name: mod.SPEC
    for mod in (pg, grpo, dapo, cispo, gppo, ce_gppo, aspo, dgpo, sapo, vespo, gpg, tis, dppo_tv, dppo_kl)
}

#: every hyper-parameter of any method, by name, in first-use order
HPARAMS: dict[str, HParam] = {}
for _spec in METHODS.values():
    for _h in _spec.hparams:
        HPARAMS.setdefault(_h.name, _h)
