"""The report card's TRL rows (docs/conformance-report.md) are current, and its TRL shim runs TRL's
own loss code: a wrong clip monkeypatched into TRL shows up as a failed cell. verl's rows are
checked in .venv-verl (tests/integrations/verl/test_verl_report.py)."""

import inspect
import warnings

import pytest

warnings.filterwarnings("ignore", message="TRL currently supports vLLM")
from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: E402

from dgpo_conformance import report  # noqa: E402
from dgpo_conformance.library import LIBRARY_LOSSES  # noqa: E402


def test_a_wrong_clip_in_trls_loss_is_a_failed_cell(monkeypatch):
    """TRL's dapo passes ``gradient``; GRPOTrainer._compute_loss with its upper clip at 1 + 2*epsilon_high fails it."""
    row = next(r for r in LIBRARY_LOSSES if r.library == "trl" and r.key == "dapo")
    real = report.run_all([row], properties=["gradient"])
    assert real[("trl", "dapo")]["gradient"].status == "pass", real

    original = GRPOTrainer._compute_loss

    def wrong_clip(self, model, inputs):
        self.epsilon_high = 2 * self.epsilon_high
        return original(self, model, inputs)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", wrong_clip)
    broken = report.run_all([row], properties=["gradient"])
    outcome = broken[("trl", "dapo")]["gradient"]
    assert outcome.status == "FAIL", broken
    assert "gradient differs from the spec's -A*V/N" in outcome.detail, outcome.detail
    line = next(ln for ln in report.render(broken, rows=[row]).splitlines() if ln.startswith("| TRL `dapo`"))
    assert "[**FAIL**](#trl-dapo-gradient)" in line, line


def test_report_is_current(capsys):
    """TRL's rows rerun equal their saved outcomes, and the Markdown is the rendering of the saved outcomes."""
    code = report.main(["--check", "--library", "trl"])
    err = capsys.readouterr().err
    assert code == 0, f"TRL's rows of docs/conformance-report.md are stale or have unexplained failures:\n{err}"


@pytest.mark.parametrize("row", [r for r in LIBRARY_LOSSES if r.method is not None and r.library == "trl"],
                         ids=lambda r: r.target)
def test_every_shim_calls_its_library(row):
    """The shim names a loss_type TRL's ``_compute_loss`` branches on."""
    assert f'"{row.loss}"' in inspect.getsource(GRPOTrainer._compute_loss), row.loss
