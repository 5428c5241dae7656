"""`dgpo verl-check` on a run's configuration: the settings under which verl trains another loss.

Each bad configuration is the docs' override lines (docs/scale.md) plus one change; the check must
fail with one line naming it, and pass on the lines themselves. Runs in .venv-verl.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PL = "actor_rollout_ref.actor.policy_loss"


def _doc_lines() -> list[str]:
    text = (ROOT / "docs" / "scale.md").read_text()
    block = text.split("The exact override lines:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


def _check(*args: str, cwd=None):
    return subprocess.run([sys.executable, "-m", "dgpo_cli", "verl-check", *args], capture_output=True,
                          text=True, timeout=180, cwd=cwd)


def _replace(lines: list[str], key: str, line: str | None) -> list[str]:
    kept = [ln for ln in lines if ln.lstrip("+").split("=", 1)[0] != key]
    return kept + ([line] if line else [])


def test_the_documented_overrides_pass():
    out = _check(*_doc_lines())
    assert out.returncode == 0, out.stderr
    assert "config: verl will train the configured policy loss" in out.stdout


BAD = {
    # verl/trainer/ppo/rollout_corr_helper.py overwrites loss_mode with 'bypass_mode'
    "bypass_mode": (lambda ls: ls + ["algorithm.rollout_correction.bypass_mode=True"],
                    "bypass_mode=True makes verl replace"),
    "unregistered": (lambda ls: _replace(ls, f"{PL}.loss_mode", f"{PL}.loss_mode=dgpo2"),
                     "loss_mode=dgpo2 is not a registered verl policy loss"),
    # verl's own PolicyLossConfig: n and m would take their defaults without a word
    "target_without_n_m": (lambda ls: _replace(_replace(_replace(ls, f"{PL}._target_", None), f"{PL}.n", None),
                                               f"{PL}.m", None),
                           "cannot carry n, m of loss_mode=dgpo"),
    # verl's own PolicyLossConfig with n and m set: verl refuses the keys when the worker starts
    "target_rejects_n": (lambda ls: _replace(ls, f"{PL}._target_", f"{PL}._target_=verl.workers.config.PolicyLossConfig"),
                         "cannot be built"),
    "bad_n": (lambda ls: _replace(ls, f"{PL}.n", f"+{PL}.n=0"), "cannot be built"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_setting_that_changes_the_loss_fails_in_one_line(case):
    change, reason = BAD[case]
    out = _check(*change(_doc_lines()))
    assert out.returncode == 2, out.stdout
    assert reason in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_config_file_replaces_ppo_trainer_and_may_build_on_it(tmp_path):
    good = tmp_path / "my_run.yaml"
    good.write_text("defaults:\n  - ppo_trainer\n  - _self_\n"
                    "actor_rollout_ref:\n  actor:\n    policy_loss:\n      loss_mode: dgpo\n"
                    "      _target_: dgpo_ref.integrations.verl_plugin.DGPOPolicyLossConfig\n")
    assert _check("--config", str(good), f"+{PL}.n=2").returncode == 0
    bad = tmp_path / "bypass.yaml"
    bad.write_text(good.read_text() + "algorithm:\n  rollout_correction:\n    bypass_mode: true\n")
    out = _check("--config", str(bad))
    assert out.returncode == 2 and "bypass_mode=True makes verl replace" in out.stderr
    # an override after the file wins, as in verl's main_ppo
    assert _check("--config", str(bad), "algorithm.rollout_correction.bypass_mode=False").returncode == 0


@pytest.mark.parametrize("args, reason", [
    (["--config", "no/such.yaml"], "no such file"),
    (["actor_rollout_ref.actor.no_such_key=1"], "the verl config does not compose"),
])
def test_unusable_config_arguments_fail_in_one_line(args, reason):
    out = _check(*args)
    assert out.returncode == 2 and reason in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
