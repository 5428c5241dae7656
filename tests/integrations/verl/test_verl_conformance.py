"""Each registered verl loss passes the conformance properties generated from the spec.

Run in-process through ``dgpo_ref.conformance.run_properties`` (what ``dgpo conformance --impl ...
--signature verl`` runs). The runner's verl convention passes hyper-parameters as attributes of
``config``; the plugin reads eps from ``clip_ratio_low``/``clip_ratio_high`` (sampled here) and the
others from ``config.policy_loss`` (the DGPOPolicyLossConfig), so those are held at the method's
defaults. ``regions`` is not applicable: the plugin reports them under verl's ``actor/`` prefix
(test_verl_losses.py checks them).
"""

import pytest

from dgpo_ref import LOSSES
from dgpo_ref.conformance import run_properties
from dgpo_ref.integrations.verl import METHODS


@pytest.mark.parametrize("name", METHODS)
def test_registered_loss_passes_the_generated_properties(name):
    fixed = {k: v for k, v in LOSSES[name].defaults.items() if k not in ("eps_low", "eps_high")}
    outcomes = run_properties(name, f"dgpo_ref.integrations.verl_plugin:compute_policy_loss_{name}", "verl", fixed)
    assert outcomes, "no conformance test ran"
    failed = {p: o.detail for p, o in outcomes.items() if o.status == "FAIL"}
    assert not failed, failed
    passed = {p for p, o in outcomes.items() if o.status == "pass"}
    assert {"gradient", "value", "continuity", "bounds", "finiteness", "aggregation", "dtypes"} <= passed
