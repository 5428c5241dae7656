"""bench.rescore: saved completions scored again with another reward, counts per file."""

import json

import pytest

from bench import rescore
from clikit import CliError


def test_rescore_counts_what_the_new_reward_refuses(tmp_path, capsys):
    rows = [{"id": 0, "answer": "2", "completions": ["288 + -297 - (2 - 3 - 12) - (0 + 2)"], "rewards": [1.0]},
            {"id": 1, "answer": "5", "completions": ["\\boxed{5}"], "rewards": [1.0]},
            {"id": 2, "answer": "7", "completions": ["\\boxed{8}"], "rewards": [0.0]}]
    (tmp_path / "val_step000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "r.json"
    assert rescore.main([str(tmp_path), "--out", str(out)]) == 0
    got = json.loads(out.read_text())["files"][str(tmp_path / "val_step000000.jsonl")]
    assert (got["completions"], got["right_as_saved"], got["right_now"]) == (3, 2, 1)
    assert [e["id"] for e in got["examples_no_longer_right"]] == [0]
    assert json.loads(out.read_text())["reward"] == "math-final"
    assert json.loads(capsys.readouterr().out)["reward"] == "math-final"


def test_rescore_bad_input_is_one_line(tmp_path):
    with pytest.raises(CliError, match="--reward 'nope'"):
        rescore.main([str(tmp_path), "--reward", "nope"])
    with pytest.raises(CliError, match="no .jsonl files"):
        rescore.main([str(tmp_path)])
    with pytest.raises(CliError, match="not a folder"):
        rescore.main([str(tmp_path / "missing")])
