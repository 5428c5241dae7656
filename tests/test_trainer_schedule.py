"""The learning-rate schedule: warm-up, a hold at ``lr``, a linear fall to ``min_lr_ratio × lr``."""

import pytest
import torch

from trainer.config import build_config, config_from_dict, validate
from trainer.loop import lr_factor, make_optimizer


def _rates(cfg, n):
    model = torch.nn.Linear(2, 1)
    opt, sched = make_optimizer(model, cfg)
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return rates


def test_default_schedule_warms_holds_then_falls():
    cfg = build_config()
    warm, start, steps, ratio = cfg.warmup_steps, cfg.lr_decay_start, cfg.lr_decay_steps, cfg.min_lr_ratio
    assert 0 < warm < start and steps > 0 and 0 < ratio < 1  # the default exercises every phase
    r = _rates(cfg, start + steps + 10)
    assert r[:warm] == pytest.approx([cfg.lr * (i + 1) / (warm + 1) for i in range(warm)])
    assert r[warm:start] == pytest.approx([cfg.lr] * (start - warm))
    fall = r[start : start + steps]
    assert all(a > b for a, b in zip([cfg.lr] + fall, fall))  # strictly falling, linearly
    assert fall == pytest.approx([cfg.lr * (1 - (1 - ratio) * (i + 1) / steps) for i in range(steps)])
    assert r[start + steps - 1 :] == pytest.approx([cfg.lr * ratio] * 11)


def test_ratio_one_is_constant_and_zero_steps_is_a_drop():
    cfg = build_config(sets=["min_lr_ratio=1", "warmup_steps=0"])
    assert _rates(cfg, 50) == pytest.approx([cfg.lr] * 50)
    r = _rates(build_config(sets=["lr=1e-4", "lr_decay_steps=0", "lr_decay_start=5", "warmup_steps=0"]), 8)
    assert r == pytest.approx([1e-4] * 5 + [5e-5] * 3)


def test_warmup_multiplies_an_early_decay():
    cfg = build_config(sets=["warmup_steps=4", "lr_decay_start=0", "lr_decay_steps=4", "min_lr_ratio=0"])
    assert [lr_factor(cfg, s) for s in range(6)] == pytest.approx([0.2 * 0.75, 0.4 * 0.5, 0.6 * 0.25, 0, 0, 0])


def test_resumed_schedule_continues(tmp_path):
    cfg = build_config(sets=["lr_decay_start=3", "lr_decay_steps=4"])
    model = torch.nn.Linear(2, 1)
    opt, sched = make_optimizer(model, cfg)
    for _ in range(5):
        opt.step()
        sched.step()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "s.pt")
    blob = torch.load(tmp_path / "s.pt", weights_only=False)  # as trainer.checkpoint.load_state does
    opt2, sched2 = make_optimizer(torch.nn.Linear(2, 1), cfg)
    opt2.load_state_dict(blob["optimizer"])
    sched2.load_state_dict(blob["scheduler"])
    sched2.step()
    opt.step()
    sched.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"]) == pytest.approx(
        cfg.lr * lr_factor(cfg, 6))


@pytest.mark.parametrize("sets, message", [
    (["min_lr_ratio=1.5"], "min_lr_ratio must be a finite number in [0, 1]"),
    (["min_lr_ratio=-0.1"], "min_lr_ratio must be a finite number in [0, 1]"),
    (["lr_decay_start=-1"], "lr_decay_start must be an integer >= 0"),
    (["lr_decay_steps=-2"], "lr_decay_steps must be an integer >= 0"),
])
def test_bad_schedule_is_refused(sets, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(build_config(sets=sets))


def test_run_saved_before_the_schedule_resumes_at_a_constant_rate():
    saved = build_config(sets=["lr=1e-5"]).to_dict()
    for key in ("min_lr_ratio", "lr_decay_start", "lr_decay_steps"):
        del saved[key]
    old = config_from_dict(saved)
    assert [lr_factor(old, s) for s in (5, 25, 100)] == [1.0, 1.0, 1.0]
    new = build_config(sets=["min_lr_ratio=0.25"])
    assert config_from_dict(new.to_dict()).min_lr_ratio == 0.25  # a run that saved the field keeps it
