"""pg: the unbiased importance-sampled policy gradient, W = 1/p_old (V = r) in every region."""

from spec.core import REGIONS, Branch, Example, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW
from spec.symbols import r, ratio

#: the policy-gradient branch, shared by every method inside the trust region
PG_BRANCH = Branch.from_V(r, J=ratio)

SPEC = MethodSpec(
    name="pg",
    title="policy gradient",
    summary="W = 1/p_old everywhere (eps only classify regions for metrics)",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2)),
    branches={region: PG_BRANCH for region in REGIONS},
    disproved={
        "vanishing": "W = 1/p_old as p -> 0 on LN",
        "monotonicity": "W = 1/p_old is constant on LN and HP",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 0.5), Example(1.5, 1, 1.5), Example(1.0, 1, 1.0)),
)
