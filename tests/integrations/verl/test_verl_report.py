"""The report card (docs/conformance-report.md) is current, and a broken library loss shows up in it.

Run in .venv-verl, which holds verl and TRL together (scripts/setup_verl.sh): regenerating the
report runs every row of ``dgpo_conformance.library.LIBRARY_LOSSES`` by the library's own code.
"""

import dataclasses

import pytest
from verl.trainer.ppo import core_algos

from dgpo_conformance import report
from dgpo_conformance.library import LIBRARY_LOSSES


def test_report_is_current(capsys):
    code = report.main(["--check"])
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


@pytest.mark.parametrize("row", [r for r in LIBRARY_LOSSES if r.method is not None], ids=lambda r: r.target)
def test_every_shim_calls_its_library(row):
    """The shim names a loss the library has: one in verl's registry, a loss_type TRL's
    ``_compute_loss`` branches on."""
    if row.library == "verl":
        assert core_algos.get_policy_loss_fn(row.loss) is not None
    else:
        import inspect

        from trl.trainer.grpo_trainer import GRPOTrainer

        assert f'"{row.loss}"' in inspect.getsource(GRPOTrainer._compute_loss), row.loss
