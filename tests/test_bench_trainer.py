"""The trainer section of `dgpo bench`: steady-state means and the hf/vllm pairing by round."""

from bench.bench_trainer import paired_backends
from bench.report import trainer_lines


def _row(preset, backend, update, total, dtype=None):
    seconds = {"rollout": total - update, "old_logprobs": 0.0, "weight_push": 0.0, "updates": update}
    steady = {"iterations": [2, 3], "seconds": seconds, "total_s": total, "tokens": 100.0,
              "tokens_per_s_overall": round(100 / total, 1)}
    config = {"model": "m", "backend": backend, "prompts_per_step": 16, "group_size": 8, "max_new_tokens": 16,
              **({"dtype": dtype} if dtype else {})}
    return {"preset": preset, "config": config, "iterations": [{**steady, "iteration": 3}], "steady": steady}


def test_pairs_each_vllm_child_with_the_hf_child_of_its_round():
    rows = [_row("smoke", "hf", 0.1, 0.3), _row("default", "hf", 10.0, 20.0, "float32"), _row("default", "vllm", 12.0, 22.0),
            _row("default", "hf", 8.0, 16.0), _row("default", "auto -> vllm", 8.0, 20.0)]
    paired = paired_backends(rows)
    assert paired["total"]["per_round"] == [1.1, 1.25]
    assert paired["updates"]["per_round"] == [1.2, 1.0]
    assert paired["total"]["median"] == 1.175 and paired["updates"]["median"] == 1.1
    text = "\n".join(trainer_lines(rows))
    assert "whole iteration [1.1, 1.25] (median 1.175)" in text
    assert text.count("| default |") == 4 and "| default | m | hf | float32 | 16x8 |" in text


def test_no_pair_without_both_backends_and_old_reports_still_render():
    assert paired_backends([_row("default", "hf", 1.0, 2.0)]) is None
    old = _row("default", "hf", 1.0, 2.0)
    del old["steady"]  # a report saved before the steady mean existed: its last iteration is shown
    text = "\n".join(trainer_lines([old]))
    assert "| 2.0 |" in text and "paired by round" not in text
    assert "| default | m | hf | - |" in text  # no dtype recorded: a dash
