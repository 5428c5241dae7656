"""The report card's table and rendering (dgpo_conformance/library.py, dgpo_conformance/report.py).

Without the libraries: the mapping's consistency with the spec records, the rendering of each kind
of row, the meanings' stale checks, and the command's refusal without verl. The report itself is
regenerated and checked in .venv-verl (tests/integrations/verl/test_verl_report.py).
"""

from pathlib import Path

import pytest

from clikit import CliError
from dgpo_conformance import PROPERTIES, report
from dgpo_conformance.library import LIBRARY_LOSSES, TRL, VERL, LibraryLoss
from dgpo_conformance.runner import Outcome, generated_dir
from dgpo_ref.hparams import DEFAULTS

RUNNABLE = [r for r in LIBRARY_LOSSES if r.method is not None]


@pytest.mark.parametrize("row", [r for r in RUNNABLE if r.method in DEFAULTS], ids=lambda r: r.target)
def test_every_hyper_parameter_has_a_library_name(row):
    """A row names exactly its method's hyper-parameters (a new one would otherwise raise mid-report)."""
    assert set(row.names) == set(DEFAULTS[row.method]), (row.label, sorted(row.names), sorted(DEFAULTS[row.method]))


def test_rows_are_unique_and_have_shims():
    keys = [(r.library, r.key) for r in LIBRARY_LOSSES]
    assert len(keys) == len(set(keys))
    for row in RUNNABLE:
        assert getattr(VERL if row.library == "verl" else TRL, row.key).row is row
    for row in LIBRARY_LOSSES:
        if row.method is None:
            assert row.note.startswith("does not fit"), row


def test_a_method_without_generated_tests_is_no_spec_yet():
    row = LibraryLoss("verl", "x", "x", "no_such_method", {})
    assert not (generated_dir() / "test_no_such_method.py").exists()
    assert report.row_outcomes(row) == "no spec yet"
    assert report.row_outcomes(LibraryLoss("verl", "y", "y", None, note="does not fit: z")) == "does not fit"


def _results(status="FAIL"):
    rows = [LibraryLoss("verl", "a", "a", "grpo", note="n1 depends on |A|"), LibraryLoss("trl", "b", "b", "sapo", note="n2"),
            LibraryLoss("trl", "c", "c", None, note="does not fit: n3")]
    ran = {p: Outcome("pass") for p in PROPERTIES}
    ran["gradient"] = Outcome(status, "AssertionError: grpo: gradient differs\n  token[0,0]: r=1e-30")
    ran["regions"] = Outcome("n/a", "no metrics")
    return rows, {("verl", "a"): ran, ("trl", "b"): "no spec yet", ("trl", "c"): "does not fit"}


def test_render_marks_each_kind_of_cell(monkeypatch):
    rows, results = _results()
    monkeypatch.setattr(report, "MEANINGS", {("verl", "a", "gradient"): "verl clamps log r."})
    text = report.render(results, rows)
    lines = {ln.split(" | ")[0]: ln for ln in text.splitlines() if ln.startswith("| ")}
    a = lines["| verl `a`"].split(" | ")
    assert a[1] == "grpo" and a[2] == "[**FAIL**](#verl-a-gradient)" and a[3] == "pass"
    assert a[2 + PROPERTIES.index("regions")] == "n/a"
    assert a[-1] == "n1 depends on \\|A\\| |"  # a | would end the cell
    assert "no spec yet (no tests/conformance/test_sapo.py); n2" in lines["| TRL `b`"]
    assert lines["| TRL `c`"].count("| — ") == len(PROPERTIES) + 1  # spec method and every property
    assert '<a id="verl-a-gradient"></a>' in text and "verl clamps log r." in text
    assert "token[0,0]: r=1e-30" in text
    assert report.unexplained(results) == [] and report.stale_meanings(results) == []


def test_unexplained_and_stale_meanings(monkeypatch):
    rows, results = _results()
    monkeypatch.setattr(report, "MEANINGS", {})
    assert report.unexplained(results) == [("verl", "a", "gradient")]
    assert "NOT YET EXPLAINED" in report.render(results, rows)
    rows, results = _results(status="pass")
    monkeypatch.setattr(report, "MEANINGS", {("verl", "a", "gradient"): "x", ("trl", "b", "value"): "y"})
    # the passing cell's meaning is stale; the row that did not run keeps its meaning
    assert report.stale_meanings(results) == [("verl", "a", "gradient")]


def test_every_meaning_names_a_row_and_a_property():
    keys = {(r.library, r.key) for r in RUNNABLE}
    for lib, key, prop in report.MEANINGS:
        assert (lib, key) in keys and prop in PROPERTIES, (lib, key, prop)


def test_a_library_that_cannot_run_is_refused_before_any_row(monkeypatch, tmp_path):
    """verl neither importable nor in .venv-verl: one line naming the library and where to get it."""
    monkeypatch.setattr(report, "_version", lambda dist: "not installed" if dist == "verl" else "1.0")
    monkeypatch.setattr(report, "VENVS", {"verl": tmp_path / "no-venv" / "bin" / "python"})
    monkeypatch.setattr(report, "run_all", lambda *a, **k: pytest.fail("ran rows"))
    with pytest.raises(CliError, match=r"--library verl: verl is not importable here and .*no-venv/bin/python does "
                                       r"not exist; bash scripts/setup_verl.sh creates \.venv-verl"):
        report.main(["--check", "--library", "verl", "--results", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def _fake_library(monkeypatch, status):
    """run_library without the libraries: each row's outcomes are ``status`` on every property."""
    def run_library(library, progress=None):
        rows = {r.key: ({p: Outcome(status, "cx") for p in PROPERTIES} if r.method else "does not fit")
                for r in LIBRARY_LOSSES if r.library == library}
        return {"library": library, "version": "9.9", "rows": report._encode({(library, k): v for k, v in rows.items()})}

    monkeypatch.setattr(report, "_version", lambda dist: "9.9")
    monkeypatch.setattr(report, "run_library", run_library)
    monkeypatch.setattr(report, "MEANINGS", {})


def test_write_then_check_then_a_changed_outcome_is_stale(monkeypatch, tmp_path, capsys):
    """--report saves each library's outcomes and renders from them; --check of one library passes
    until that library's outcome changes, and names the row; the other library's saved file is used as is."""
    _fake_library(monkeypatch, "pass")
    out, res = tmp_path / "report.md", tmp_path / "results"
    with pytest.raises(CliError, match="no saved outcomes for trl"):
        report.main(["--library", "verl", "--out", str(out), "--results", str(res)])
    assert not out.exists() and not res.exists()
    assert report.main(["--out", str(out), "--results", str(res)]) == 0
    assert sorted(f.name for f in res.iterdir()) == ["trl.json", "verl.json"]
    text = out.read_text()
    assert "verl rows run in .venv-verl with verl 9.9" in text.replace("'s", "")
    assert report.main(["--check", "--library", "trl", "--out", str(out), "--results", str(res)]) == 0
    _fake_library(monkeypatch, "n/a")  # every outcome of every row changed
    capsys.readouterr()
    assert report.main(["--check", "--library", "trl", "--out", str(out), "--results", str(res)]) == 1
    err = capsys.readouterr().err
    assert "trl.json is stale (rows " in err and "dapo" in err, err
    assert out.read_text() == text  # --check writes nothing
    out.write_text(text + "edited\n")
    _fake_library(monkeypatch, "pass")
    assert report.main(["--check", "--library", "verl", "--out", str(out), "--results", str(res)]) == 1
    assert "is not the rendering of the saved outcomes" in capsys.readouterr().err


def test_saved_outcomes_round_trip():
    rows, results = _results()
    enc = {"library": "verl", "version": "1", "rows": report._encode({k: v for k, v in results.items() if k[0] == "verl"})}
    assert report._decode("verl", enc["rows"]) == {("verl", "a"): results[("verl", "a")]}


def test_a_failing_subprocess_is_an_error(monkeypatch, tmp_path):
    """A library run in another interpreter that fails there raises instead of rendering half a report."""
    import sys

    # this interpreter has no verl, so the subprocess refuses --outcomes-to (exit 2)
    monkeypatch.setattr(report, "VENVS", {"verl": Path(sys.executable)})
    with pytest.raises(RuntimeError, match="--library verl failed"):
        report._run_elsewhere("verl")
