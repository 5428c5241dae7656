"""``LOSSES``: the registry, one row (a ``LossSpec``) per method. Adding a method adds one row."""

from .losses import aspo, ce_gppo, cispo, dapo, dgpo, dppo_kl, dppo_tv, gpg, gppo, grpo, pg, sapo, tis, vespo
from .method import LossSpec

LOSSES: dict[str, LossSpec] = {
    row.name: row
    for row in (
        pg.SPEC,
        grpo.SPEC,
        dapo.SPEC,
        cispo.SPEC,
        gppo.SPEC,
        ce_gppo.SPEC,
        aspo.SPEC,
        dgpo.SPEC,
        sapo.SPEC,
        vespo.SPEC,
        gpg.SPEC,
        tis.SPEC,
        dppo_tv.SPEC,
        dppo_kl.SPEC,
    )
}


def get_spec(name: str) -> LossSpec:
    """The row for ``name``; ValueError naming ``name`` and the known methods otherwise."""
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"name={name!r} is not a known method; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
