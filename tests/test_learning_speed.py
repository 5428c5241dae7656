"""``bench.learning_speed``'s verdict: the wall-clock target and its machine-independent companions."""

import pytest

from bench.learning_speed import KEY, verdict


def _evals(points):
    return [{"iteration": it, "elapsed_s": m * 60, "train_elapsed_s": m * 50, KEY: acc} for it, m, acc in points]


def test_verdict_reports_the_iteration_and_the_machine_speed_beside_the_wall_clock():
    evals = _evals([(0, 0.8, 0.02), (5, 3.8, 0.60), (10, 6.8, 0.72), (15, 10.3, 0.76)])
    metrics = [{"elapsed_s": s, "time/update": u} for s, u in ((100, 10.0), (200, 11.0), (400, 9.0), (470, 10.5),
                                                                (600, 5.0), (700, 5.0))]
    v = verdict(evals, 15, metrics)
    assert v["target_met"] and v["minutes_to_70_elapsed"] == 6.8 and v["min_accuracy_after_reaching_70"] == 0.72
    assert v["iteration_at_70"] == 10
    assert v["update_s_median_first_8_min"] == 10.5  # the four steps within 480 s; later (faster) ones left out


def test_a_late_or_falling_run_misses_the_target():
    late = verdict(_evals([(0, 0.8, 0.02), (10, 6.6, 0.69), (20, 12.0, 0.72)]), 15)
    assert not late["target_met"] and late["iteration_at_70"] == 20 and late["update_s_median_first_8_min"] is None
    falling = verdict(_evals([(0, 0.8, 0.02), (10, 6.6, 0.71), (15, 9.0, 0.69)]), 15)
    assert not falling["target_met"] and falling["min_accuracy_after_reaching_70"] == 0.69
    never = verdict(_evals([(0, 0.8, 0.02), (10, 6.6, 0.5)]), 15)
    assert not never["target_met"] and never["iteration_at_70"] is None


def test_report_name_is_checked_before_any_run(capsys):
    from bench import learning_speed

    with pytest.raises(SystemExit) as e:
        learning_speed.main(["--seeds", "15", "--report", "../elsewhere"])
    assert e.value.code == 2 and "--report '../elsewhere'" in capsys.readouterr().err
