"""``dtype=auto``: bfloat16 only where the hardware computes it natively, resolved once in build_config."""

import json

import pytest
import torch

from trainer import config as C
from trainer.config import build_config, config_from_dict, resolve_dtype


@pytest.mark.parametrize("bf16, amx, want", [(True, False, "bfloat16"), (False, True, "bfloat16"),
                                              (False, False, "float32")])
def test_auto_on_a_cpu_follows_its_bfloat16_instructions(monkeypatch, bf16, amx, want):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_dtype("auto", "cpu") == want
    assert build_config("default", ["device=cpu"]).dtype == want


def test_auto_on_a_gpu_follows_its_bfloat16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, want in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert resolve_dtype("auto", "auto") == want
        assert resolve_dtype("auto", "cuda:0") == want
    # device=cpu on a GPU machine trains on the CPU: the CPU decides
    monkeypatch.setattr(C, "cpu_has_bf16", lambda: False)
    assert resolve_dtype("auto", "cpu") == "float32"


def test_a_chosen_dtype_is_kept_whatever_the_machine(monkeypatch):
    monkeypatch.setattr(C, "cpu_has_bf16", lambda: False)
    assert build_config("default", ["dtype=bfloat16"]).dtype == "bfloat16"
    monkeypatch.setattr(C, "cpu_has_bf16", lambda: True)
    assert build_config("default", ["dtype=float32"]).dtype == "float32"
    # the presets whose numbers must not depend on the machine set it
    assert build_config("smoke").dtype == "bfloat16"
    assert build_config("r1-distill-1.5b").dtype == "bfloat16"


def test_saved_config_records_the_resolved_dtype_so_a_resume_keeps_it(monkeypatch):
    monkeypatch.setattr(C, "cpu_has_bf16", lambda: False)
    saved = json.loads(json.dumps(build_config("default", []).to_dict()))
    assert saved["dtype"] == "float32"
    monkeypatch.setattr(C, "cpu_has_bf16", lambda: True)  # resumed on a machine with bfloat16
    assert config_from_dict(saved).dtype == "float32"


def test_bad_dtype_is_one_line_naming_the_choices():
    with pytest.raises(ValueError, match=r"^unknown dtype 'float16'; choose from 'auto', 'float32', 'bfloat16'$"):
        C.validate(build_config("default", ["dtype=float16"]))

