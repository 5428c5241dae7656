"""Each registered verl loss passes the conformance properties generated from the spec.

Run in-process through ``dgpo_conformance.runner.run_properties`` (what ``dgpo conformance --impl ...
--signature verl`` runs). The runner's verl convention builds an actor config as verl does (eps in
``clip_ratio_low``/``clip_ratio_high``, the dual clip in ``clip_ratio_c``, n/m/beta under
``policy_loss``, the global token count in ``global_batch_info``), so every hyper-parameter is
sampled from the spec's domains.
"""

import pytest

from dgpo_conformance import PROPERTIES
from dgpo_conformance.runner import run_properties
from dgpo_ref.integrations.verl import METHODS


@pytest.mark.parametrize("name", METHODS)
def test_registered_loss_passes_the_generated_properties(name):
    outcomes = run_properties(name, f"dgpo_ref.integrations.verl_plugin:compute_policy_loss_{name}", "verl")
    assert outcomes, "no conformance test ran"
    failed = {p: o.detail for p, o in outcomes.items() if o.status == "FAIL"}
    assert not failed, failed
    passed = {p for p, o in outcomes.items() if o.status == "pass"}
    assert set(PROPERTIES) <= passed, outcomes
