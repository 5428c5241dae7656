"""bench/cut_answers.py: the loop detector and the paired counts."""

import json

from bench import cut_answers


def test_a_repeated_tail_is_a_loop_and_rambling_is_not():
    loop = "The answer is 12. " + "12 + 1 = 13 = " * 6
    assert cut_answers.loop_period(loop) == len("12 + 1 = 13 = ")
    assert cut_answers.loop_period("1" * 40) == 1
    rambling = ("The Babylonian method involves finding the least common multiple of two numbers, which is "
                "1262. This is the least common multiple of 615 and 4018, which is")
    assert cut_answers.loop_period(rambling) is None
    assert cut_answers.loop_period("ab" * 10) is None  # 20 characters: shorter than the minimum run


def test_paired_counts(tmp_path):
    def write(d, rows):
        d.mkdir()
        (d / "val_step000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    row = lambda i, text, fin, rew: {"id": i, "answer": "1", "completions": [text], "rewards": [rew], "finished": [fin]}  # noqa: E731
    write(tmp_path / "s", [row(0, "x = " * 20, False, 0.0), row(1, "rambling on and on", False, 0.0),
                           row(2, "\\boxed{1}", True, 1.0)])
    write(tmp_path / "l", [row(0, "x = " * 80, False, 0.0), row(1, "rambling, then \\boxed{1}", True, 1.0),
                           row(2, "\\boxed{1}", True, 1.0)])
    assert cut_answers.main([str(tmp_path / "s"), str(tmp_path / "l"), "--out", str(tmp_path / "o.json")]) == 0
    s = json.loads((tmp_path / "o.json").read_text())["splits"]["val"]
    assert s == {"problems": 3, "cut_short": 2, "cut_short_loops": 1, "cut_short_right_in_cut_text": 0,
                 "cut_short_finished_long": 1, "cut_short_right_long": 1, "cut_short_loops_finished_long": 0,
                 "right_short": 1, "right_long": 2, "cut_long": 1}
    assert cut_answers.main([str(tmp_path / "s"), "--out", str(tmp_path / "o1.json")]) == 0  # the short run alone
    assert json.loads((tmp_path / "o1.json").read_text())["splits"]["val"] == {
        "problems": 3, "cut_short": 2, "cut_short_loops": 1, "cut_short_right_in_cut_text": 0, "right_short": 1}
