"""pg: the unbiased importance-sampled policy gradient, W = 1/p_old (V = r) in every region."""

from spec.core import REGIONS, Branch, MethodSpec
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
)
