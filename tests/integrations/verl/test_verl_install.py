"""The verl environment as a verl user gets it from `pip install 'dgpo[verl]'` (scripts/setup_verl.sh).

- It is consistent (`pip check`) and holds verl 0.9.x with dgpo's torch-only core.
- Importing ``dgpo_ref`` loads neither SymPy nor transformers; the verl plugin adds only
  ``dgpo_ref`` modules to what verl itself imports (verl 0.9.1's own ``import verl`` loads
  transformers and, through torch, SymPy: the plugin cannot and does not add to that).
"""

import json
import os
import subprocess
import sys
from importlib.metadata import requires, version


def _modules(code: str, env=None) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_environment_is_consistent_and_has_verl_and_the_core():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert version("verl").startswith("0.9.")
    base = [r for r in requires("dgpo") if "extra ==" not in r]
    assert [r.split(">")[0].split("=")[0].strip() for r in base] == ["torch"]


def test_importing_dgpo_ref_loads_neither_sympy_nor_transformers():
    loaded = _modules("import dgpo_ref, dgpo_ref.integrations")
    assert not {"sympy", "transformers", "verl"} & set(loaded)


def test_the_plugin_adds_only_dgpo_ref_modules_to_verls_own():
    # verl alone (plugin discovery off), then the plugin: what does the plugin bring in?
    verl_alone = set(_modules("import verl, verl.trainer.ppo.core_algos, verl.workers.config",
                              env={"VERL_USE_EXTERNAL_PLUGINS": "none"}))
    with_plugin = set(_modules("import verl, verl.trainer.ppo.core_algos, verl.workers.config\n"
                               "import dgpo_ref.integrations.verl_plugin", env={"VERL_USE_EXTERNAL_PLUGINS": "none"}))
    added = with_plugin - verl_alone
    assert "dgpo_ref.integrations.verl_plugin" in added  # control: the difference does see the plugin
    assert all(m == "dgpo_ref" or m.startswith("dgpo_ref.") for m in added), sorted(added)
