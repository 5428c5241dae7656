"""bench.report counts, for each target candidate, the rounds whose paired ratio met the target."""

from bench import report


def _row(round_ratios=None):
    row = {"shape": [2, 3], "dtype": "float32", "device": "cpu", "regions": {}, "compile_s": {},
           "ms": {"plain-clip": 1.0, "dgpo": 0.9}, "ratio_to_plain": {"plain-clip": 1.0, "dgpo": 0.9}}
    if round_ratios is not None:
        row["round_ratios"] = {"dgpo": round_ratios}
    return row


def test_rounds_meeting_the_target_are_counted_from_the_row():
    limit = report.TARGETS["loss_ratio"]
    text = "\n".join(report.loss_lines([_row([0.5, limit, limit + 0.01, 2.0])]))
    assert f"(ratio <= {limit} in 2 of 4 rounds)" in text


def test_rows_without_per_round_ratios_say_nothing_about_rounds():
    assert "rounds)" not in "\n".join(report.loss_lines([_row()]))
