"""Issue 17, files: `dgpo gen-tests` never removes or replaces a file it did not write; a log line is
appended whole or not at all (tried under a real `ulimit -f`); a torn line is dropped with one
warning, on resume and by `dgpo plot run`; `--out` naming the wrong kind of path is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import dgpo_cli
from dgpo_conformance.gentests import MARKER
from trainer import runlog

ROOT = Path(__file__).resolve().parents[1]
MINE = "def test_a():\n    pass\n"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- dgpo gen-tests --out DIR ---------------------------------------------------------------------
def test_gen_tests_removes_only_what_it_wrote(tmp_path, capsys):
    (tmp_path / "test_mine.py").write_text(MINE)
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "test_gone.py").write_text(f'"""Conformance tests for `gone`.\n\n{MARKER} from ..."""\n')
    assert dgpo_cli.main(["gen-tests", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "test_mine.py").read_text() == MINE
    assert not (tmp_path / "test_gone.py").exists()  # a generated file of a method no longer in the spec
    assert MARKER in (tmp_path / "test_dgpo.py").read_text()
    assert "removed stale test_gone.py" in capsys.readouterr().out
    assert dgpo_cli.main(["gen-tests", "--check", "--out", str(tmp_path)]) == 0  # test_mine.py is not "stale"


@pytest.mark.parametrize("name", ["conftest.py", "__init__.py", "test_dgpo.py"])
def test_gen_tests_refuses_to_replace_a_file_it_did_not_write(tmp_path, capsys, name):
    (tmp_path / name).write_text("# mine\n" + MINE)
    assert dgpo_cli.main(["gen-tests", "--out", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(tmp_path / name) in line and "not written by dgpo gen-tests" in line
    assert (tmp_path / name).read_text() == "# mine\n" + MINE
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


@pytest.mark.parametrize("argv", [["gen-tests", "--out"], ["plot", "weights", "--out"], ["plot", "run", "{run}", "--out"]])
def test_out_naming_the_wrong_kind_of_path_is_one_line(tmp_path, capsys, argv):
    (tmp_path / "run").mkdir()
    runlog.append_line(tmp_path / "run" / "metrics.jsonl", {"step": 1, "loss": 0.5})
    target = tmp_path / ("a_file" if argv[0] == "gen-tests" else "folder.png")
    target.write_text("keep") if argv[0] == "gen-tests" else target.mkdir()
    rc = dgpo_cli.main([a.format(run=tmp_path / "run") for a in argv] + [str(target)])
    line = _one_line(capsys.readouterr().err)
    assert rc == 2 and str(target) in line and line.startswith(f"dgpo {' '.join(argv[:2 if argv[0] == 'plot' else 1])}")
    assert target.is_dir() or target.read_text() == "keep"


# --- whole lines only ------------------------------------------------------------------------------
APPEND_UNDER_LIMIT = """
import json, resource, sys
from pathlib import Path
from trainer.runlog import append_line
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
path = Path(sys.argv[1])
try:
    for i in range(100):
        append_line(path, {"step": i, "text": "x" * 90})
except OSError as exc:
    print(f"{exc.filename}|{exc.strerror}")
"""


def test_append_under_a_file_size_limit_leaves_whole_lines(tmp_path):
    log = tmp_path / "metrics.jsonl"
    out = subprocess.run([sys.executable, "-c", APPEND_UNDER_LIMIT, str(log)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, cause = out.stdout.strip().split("|")
    assert name == str(log) and "too large" in cause.lower()
    text = log.read_text()
    assert text.endswith("\n") and len(text) <= 1000
    rows = [json.loads(ln) for ln in text.splitlines()]  # every line parses: none was cut
    assert [r["step"] for r in rows] == list(range(len(rows))) and len(rows) >= 5


def _torn_log(path: Path) -> None:
    for step in (1, 2, 3):
        runlog.append_line(path, {"step": step, "loss": 0.1 * step})
    with path.open("a") as fh:  # what a full disk left behind before appends were whole
        fh.write('{"step": 4, "loss": 0.4, "reward/mean": 0.')


def test_truncate_log_drops_a_torn_line_with_one_warning(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    _torn_log(log)
    runlog.truncate_log(log, 2)
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"warning: {log}: 1 torn line") and "line 4" in line
    assert [json.loads(ln)["step"] for ln in log.read_text().splitlines()] == [1, 2]


def test_plot_run_skips_a_torn_line_and_says_so(tmp_path, capsys):
    _torn_log(tmp_path / "metrics.jsonl")
    assert dgpo_cli.main(["plot", "run", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "metrics.jsonl: 1 torn line" in _one_line(captured.err) and "skipped" in captured.err
    assert (tmp_path / "metrics.png").stat().st_size > 10_000
