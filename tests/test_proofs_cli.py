"""``dgpo prove``: the table, JSON records, the checked-in REPORT.md, and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import dgpo_cli
from proofs import cli, report
from proofs.expected import EXPECTED
from proofs.run import Record, run
from spec import METHODS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return run(METHODS.values())


def test_every_status_is_the_expected_one(records):
    assert report.mismatches(records) == []
    assert {(r.theorem, r.method) for r in records} == set(EXPECTED)
    assert all(r.status in ("proved", "disproved") for r in records)


def test_baseline_failures_carry_counterexamples(records):
    disproved = [r for r in records if r.status == "disproved"]
    assert disproved and all(r.counterexample and r.counterexample.get("claim") for r in disproved)
    assert all(r.method != "dgpo" for r in disproved)


def test_checked_in_report_is_fresh(records):
    assert (ROOT / "proofs" / "REPORT.md").read_text(encoding="utf-8") == report.markdown(records)


def test_check_detects_a_stale_report(records, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "REPORT.md"
    stale.write_text("old\n")
    monkeypatch.setattr(cli, "REPORT", stale)
    monkeypatch.setattr(cli, "run", lambda methods, progress=False: records)
    assert cli.main(["--check", "--method", "all"]) == 1
    assert stale.read_text() == "old\n"  # --check never writes
    assert "stale" in capsys.readouterr().out
    stale.write_text(report.markdown(records), encoding="utf-8")
    assert cli.main(["--check"]) == 0


def test_unexpected_status_exits_nonzero(monkeypatch, capsys):
    fake = [Record("continuity", "dgpo", "general", "unknown", "proved", "test", None)]
    monkeypatch.setattr(cli, "run", lambda methods, progress=False: fake)
    assert cli.main(["--method", "dgpo"]) == 1
    assert "UNEXPECTED" in capsys.readouterr().out


def test_json_records_schema():
    out = subprocess.run([sys.executable, "-c", "import sys, dgpo_cli; sys.exit(dgpo_cli.main())",
                          "prove", "--method", "gppo", "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    recs = json.loads(out.stdout)
    assert {r["theorem"] for r in recs} == {t for t, m in EXPECTED if m == "gppo"}
    for r in recs:
        assert set(r) == {"theorem", "method", "instance", "status", "expected", "how", "counterexample"}
        assert r["instance"] == "general" and r["status"] == r["expected"]


@pytest.mark.parametrize("argv", [["--method", "nope"], ["--method", "dgpo", "--check"], ["--format", "xml"]])
def test_bad_input_is_one_line_exit_2(capsys, argv):
    try:
        code = dgpo_cli.main(["prove", *argv])
    except SystemExit as exc:  # argparse's own errors exit from inside the subcommand
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dgpo prove")


def test_holds_reflects_the_proved_records(records):
    from proofs import holds

    for r in records:
        assert holds(r.theorem, r.method) == (r.status == "proved")
