"""The plugin as verl sees it: registered by `import verl` alone, with verl's exact signature.

Runs in .venv-verl (scripts/setup_verl.sh); scripts/test.sh runs this folder there.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from verl.trainer.ppo import core_algos

from dgpo_ref.integrations.verl import METHODS, PLUGIN_MODULE

BIN = Path(sys.executable).parent


def _run(code_or_args, env=None):
    args = [sys.executable, "-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_import_verl_alone_registers_the_losses():
    # A fresh interpreter that imports only verl, as a Ray worker does: the entry point must do the rest.
    code = (
        "import json, sys, verl\n"
        "from verl.trainer.ppo.core_algos import get_policy_loss_fn\n"
        f"print(json.dumps({{n: get_policy_loss_fn(n).__module__ for n in {list(METHODS)!r}}}))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {n: PLUGIN_MODULE for n in METHODS}


def test_registered_functions_have_verls_exact_signature():
    vanilla = inspect.signature(core_algos.compute_policy_loss_vanilla)
    for name in METHODS:
        sig = inspect.signature(core_algos.get_policy_loss_fn(name))
        assert [(p.name, p.kind, p.default) for p in sig.parameters.values()] == [
            (p.name, p.kind, p.default) for p in vanilla.parameters.values()
        ], name


def test_verl_check_passes_in_a_good_install():
    out = _run([str(BIN / "dgpo"), "verl-check"])
    assert out.returncode == 0, out.stderr
    for name in METHODS:
        assert f"{name}" in out.stdout and "ok" in out.stdout


def test_verl_check_fails_loudly_when_verl_does_not_load_the_plugin():
    # also the control for the first test: without verl's entry-point discovery the losses are absent
    out = _run([str(BIN / "dgpo"), "verl-check"], env={"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert out.returncode == 2
    assert "are not registered" in out.stderr and "VERL_USE_EXTERNAL_PLUGINS" in out.stderr
    assert "Traceback" not in out.stderr
