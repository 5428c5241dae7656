"""A method's facts live in its spec record; nothing downstream may keep an old copy silently.

In a copy of the packages, change DGPO's default m (2 -> 3), and separately the domain of m, in
``spec/methods/dgpo.py`` only. The freshness check that scripts/test.sh runs (``dgpo gen-tests
--check``) must fail, naming the generated files, until ``dgpo gen-tests`` regenerates; after that the
copy's ``dgpo_ref``, imported fresh, trains with the new value. Only the freshness check and a few
imports run in the copy (seconds), never the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the spec -> generate -> reference loop needs (the rest of the repository plays no part)
PARTS = ("spec", "proofs", "dgpo_ref", "dgpo_conformance", "dgpo_cli.py", "clikit.py", "docs/methods.md",
         "tests/conformance")
RECORD = "spec/methods/dgpo.py"

# Runs in the copy: the loss at the defaults, and with m (and n) given, on tokens in every region.
PROBE = r"""
import json, math, sys, torch
import dgpo_ref
assert dgpo_ref.__file__.startswith(sys.argv[1]), dgpo_ref.__file__
lp = torch.log(torch.tensor([[0.5, 1.0, 1.5, 0.5, 1.5, 3.0]], dtype=torch.float64)) - 2.0
kw = dict(old_log_prob=torch.full_like(lp, -2.0), advantages=torch.tensor([1.0], dtype=torch.float64),
          response_mask=torch.ones_like(lp, dtype=torch.bool))
def loss(**hp):
    x = lp.clone().requires_grad_()
    value, _ = dgpo_ref.policy_loss("dgpo", log_prob=x, **kw, **hp)
    value.backward()
    return [value.item()] + x.grad.flatten().tolist()
def accepts(**hp):
    try:
        loss(**hp)
        return True
    except ValueError:
        return False
print(json.dumps({"default": loss(), "m2": loss(m=2), "m3": loss(m=3), "defaults": dict(dgpo_ref.LOSSES["dgpo"].defaults),
                  "kwdefault_m": dgpo_ref.dgpo_loss.__kwdefaults__["m"], "accepts_m5": accepts(m=5),
                  "accepts_m4": accepts(m=4)}))
"""


def _copy(tmp: Path) -> Path:
    dst = tmp / "repo"
    for part in PARTS:
        src = ROOT / part
        assert src.exists(), src
        (dst / part).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst / part, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
        else:
            shutil.copy2(src, dst / part)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected one {old!r}"
    path.write_text(text.replace(old, new))


def _python(copy: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    # 900 s: regenerating then checking 14 methods is ~40 s of CPU, but took > 300 s of wall time on
    # the shared 2-core machine under load (issue 14)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=900)


def _dgpo(copy: Path, *argv: str) -> subprocess.CompletedProcess:
    code = ("import sys, dgpo_cli, spec, proofs, dgpo_conformance, dgpo_ref\n"
            "for m in (dgpo_cli, spec, proofs, dgpo_conformance, dgpo_ref):\n"
            "    assert m.__file__.startswith(sys.argv[1]), m.__file__  # the copy, not the checkout\n"
            "sys.exit(dgpo_cli.main(sys.argv[2:]))")
    return _python(copy, code, str(copy), *argv)


def _probe(copy: Path) -> dict:
    out = _python(copy, PROBE, str(copy))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def _stale_until_regenerated(copy: Path) -> None:
    stale = _dgpo(copy, "gen-tests", "--check")
    assert stale.returncode == 1, (stale.stdout, stale.stderr[-2000:])
    for generated in ("dgpo_ref/_generated_hparams.py", "docs/methods.md", "tests/conformance/test_dgpo.py"):
        assert str(copy / generated) in stale.stderr, (generated, stale.stderr[-2000:])
    code = ("import sys, dgpo_cli\n"
            "assert dgpo_cli.main(['gen-tests']) == 0\n"
            "sys.exit(dgpo_cli.main(['gen-tests', '--check']))")
    fresh = _python(copy, code)  # regenerate, then the same check passes
    assert fresh.returncode == 0, fresh.stderr[-2000:]


@pytest.fixture
def copy(tmp_path):
    dst = _copy(tmp_path)
    fresh = _dgpo(dst, "gen-tests", "--check")  # control: the untouched copy is up to date
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    return dst


def test_a_changed_default_fails_the_check_until_regenerated_then_dgpo_ref_uses_it(copy):
    before = _probe(copy)
    assert before["defaults"]["m"] == 2 and before["default"] == before["m2"] != before["m3"]
    _edit(copy / RECORD, "M.with_default(2)", "M.with_default(3)")
    _stale_until_regenerated(copy)
    after = _probe(copy)
    assert after["defaults"]["m"] == 3 and after["kwdefault_m"] == 3
    assert after["default"] == after["m3"] != after["m2"]
    assert "| `dgpo` | eps_low 0.2, eps_high 0.2, n 1, m 3 |" in (copy / "docs/methods.md").read_text()


def test_a_changed_domain_fails_the_check_until_regenerated_then_dgpo_ref_enforces_it(copy):
    before = _probe(copy)
    assert before["accepts_m5"] and before["accepts_m4"]
    _edit(copy / RECORD, "M.with_default(2)", 'M.with_default(2).with_domain("1 <= m < 5, integer", 0, 5)')
    _stale_until_regenerated(copy)
    after = _probe(copy)
    assert not after["accepts_m5"] and after["accepts_m4"]
    assert after["default"] == before["default"]
    assert "1 <= m < 5, integer" in (copy / "docs/methods.md").read_text()
