"""examples/trl/train_r1_distill_1.5b.py builds the DGPOConfig of the documented setting."""

import importlib.util
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="TRL currently supports vLLM")
SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "trl" / "train_r1_distill_1.5b.py"
CPU = ["--use_cpu", "true", "--bf16", "false", "--gradient_checkpointing", "false"]


def _example():
    spec = importlib.util.spec_from_file_location("trl_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_are_the_papers_setting():
    config, data, model = _example().build_config(["--data", "train.parquet", *CPU])
    assert (config.loss_name, config.n, config.m, config.beta, config.loss_type) == ("dgpo", 2, 2, 0.0, "dapo")
    assert config.steps_per_generation // config.gradient_accumulation_steps == 4  # optimizer steps per rollout
    gpus = 8
    prompts = config.per_device_train_batch_size * gpus * config.steps_per_generation // config.num_generations
    assert prompts == 1024 and config.use_vllm
    assert (data, model) == ("train.parquet", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")


def test_flags_override_and_are_validated():
    config, _, _ = _example().build_config(["--data", "d.json", "--n", "1", "--m", "3", *CPU])
    assert (config.n, config.m) == (1, 3)
    with pytest.raises(ValueError, match="m=0"):
        _example().build_config(["--data", "d.json", "--m", "0", *CPU])
