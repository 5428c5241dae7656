"""The method registry: one module per method, each defining ``SPEC``; ``METHODS`` maps name -> spec."""

from __future__ import annotations

from spec.core import MethodSpec
from spec.methods import aspo, ce_gppo, cispo, dapo, dgpo, gppo, grpo, pg

#: registry name -> spec object, in the order of docs/methods.md
METHODS: dict[str, MethodSpec] = {
    mod.SPEC.name: mod.SPEC for mod in (pg, grpo, dapo, cispo, gppo, ce_gppo, aspo, dgpo)
}
