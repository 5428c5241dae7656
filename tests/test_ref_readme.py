"""The README's dgpo_ref example runs as written."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The torch reference losses (dgpo_ref)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 13 and "dgpo_loss" in code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    loss, hp_fraction, nonfinite = (float(x) for x in out.stdout.split())
    assert 0.0 <= hp_fraction <= 1.0 and nonfinite == 0.0
