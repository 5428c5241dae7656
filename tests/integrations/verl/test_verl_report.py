"""The report card (docs/conformance-report.md) is current, and a broken library loss shows up in it.

Run in .venv-verl (scripts/setup_verl.sh), which holds verl but not TRL (verl 0.9.1's actor breaks
on import when TRL 1.16 is importable): verl's rows of ``dgpo_conformance.library.LIBRARY_LOSSES``
are rerun by verl's own code and compared with their saved outcomes; TRL's rows are checked in
the project's .venv (tests/integrations/trl/test_trl_report.py).
"""

import dataclasses

import pytest
from verl.trainer.ppo import core_algos

from dgpo_conformance import report
from dgpo_conformance.library import LIBRARY_LOSSES


def test_trl_is_not_installed_beside_verl():
    """The environment the verl tests run in is verl's as a user installs it: TRL there breaks verl's actor."""
    assert report._version("trl") == "not installed"


def test_report_is_current(capsys):
    code = report.main(["--check", "--library", "verl"])
    err = capsys.readouterr().err
    assert code == 0, f"docs/conformance-report.md is stale or has unexplained failures:\n{err}"


def test_a_wrong_clip_in_verls_cispo_is_a_failed_cell(monkeypatch):
    """verl's own cispo passes ``gradient``; the same function with its upper clip at 1 + 2*eps_high
    (monkeypatched into verl's registry, where the shim looks it up) fails it, and the report says so."""
    row = next(r for r in LIBRARY_LOSSES if r.library == "verl" and r.key == "cispo")
    real = report.run_all([row], properties=["gradient"])
    assert real[("verl", "cispo")]["gradient"].status == "pass", real

    original = core_algos.get_policy_loss_fn("cispo")

    def wrong_clip(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode="token-mean",
                   config=None, rollout_is_weights=None):
        config = dataclasses.replace(config, clip_ratio_high=2 * config.clip_ratio_high)
        return original(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights)

    monkeypatch.setitem(core_algos.POLICY_LOSS_REGISTRY, "cispo", wrong_clip)
    broken = report.run_all([row], properties=["gradient"])
    outcome = broken[("verl", "cispo")]["gradient"]
    assert outcome.status == "FAIL", broken
    assert "gradient differs from the spec's -A*V/N" in outcome.detail, outcome.detail
    text = report.render(broken, rows=[row])
    line = next(ln for ln in text.splitlines() if ln.startswith("| verl `cispo`"))
    assert "[**FAIL**](#verl-cispo-gradient)" in line, line
    assert '<a id="verl-cispo-gradient"></a>' in text


@pytest.mark.parametrize("row", [r for r in LIBRARY_LOSSES if r.method is not None and r.library == "verl"],
                         ids=lambda r: r.target)
def test_every_shim_calls_its_library(row):
    """The shim names a loss in verl's registry."""
    assert core_algos.get_policy_loss_fn(row.loss) is not None
