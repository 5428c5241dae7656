"""Packaging: the base install is the torch-only core, and every other part names its extra.

- pyproject.toml: the base requires torch only; each subcommand's extra (``dgpo_cli.COMMANDS``)
  is an extra of pyproject.toml.
- Importing ``dgpo_ref`` (what a verl or TRL user imports) loads neither SymPy nor transformers.
- A subcommand whose extra is missing says, in one line, which extra to install, before it runs:
  simulated by making the extra's distributions look uninstalled (and, for a checkout that was
  never installed, by making its modules unimportable in a fresh interpreter).
"""

import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib

import dgpo_cli
from dgpo_cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def _dist(requirement: str) -> str:
    for sep in "<>=!~[; ":
        requirement = requirement.split(sep, 1)[0]
    return requirement.lower().replace("_", "-")


def test_base_install_is_torch_only():
    assert [_dist(r) for r in PROJECT["dependencies"]] == ["torch"]


def test_every_subcommand_names_an_extra_of_pyproject():
    for name, (_, extra, _) in COMMANDS.items():
        assert extra in EXTRAS, f"dgpo {name}: extra {extra!r} is not in pyproject.toml"


def _modules_of(extra: str) -> list[str]:
    """Top-level modules of the installed distributions the extra requires (self-references followed)."""
    dists, todo = set(), list(EXTRAS[extra])
    while todo:
        req = todo.pop()
        if req.startswith("dgpo["):
            todo += [r for e in req[5:-1].split(",") for r in EXTRAS[e]]
        else:
            dists.add(_dist(req))
    dists.discard("numpy")  # torch imports numpy when present: blocking it only makes torch warn
    return sorted(m for m, ds in packages_distributions().items()
                  if any(d.lower().replace("_", "-") in dists for d in ds) and m.isidentifier())


def _run(code: str):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_importing_dgpo_ref_loads_neither_sympy_nor_transformers():
    """dgpo_ref is torch only: no SymPy, hypothesis, pytest, and none of the other parts."""
    banned = ('sympy', 'transformers', 'z3', 'hypothesis', 'pytest', '_pytest', 'spec', 'proofs', 'dgpo_conformance',
              'dgpo_cli', 'clikit', 'trainer')
    code = ("import json, sys, dgpo_ref, dgpo_ref.integrations; from dgpo_ref import policy_loss\n"
            f"print(json.dumps(sorted(m for m in {banned!r} if m in sys.modules)))")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_check_sees_a_loaded_module():
    # control for the test above: the same check reports a module that is loaded
    out = _run("import json, sys, sympy\nprint(json.dumps([m for m in ('sympy',) if m in sys.modules]))")
    assert json.loads(out.stdout) == ["sympy"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_subcommand_without_its_extra_names_it(command, monkeypatch, capsys):
    # the installed metadata says what the extra requires; make all of it look absent
    extra = COMMANDS[command][1]
    required = set(dgpo_cli._requirements(extra))
    assert required, f"the {extra!r} extra requires nothing?"
    real = dgpo_cli.metadata.version

    def version(name):
        if name in required:
            raise dgpo_cli.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(dgpo_cli.metadata, "version", version)
    assert dgpo_cli.main([*command.split(), "--help"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"pip install 'dgpo[{extra}]'" in err[0], err


@pytest.mark.parametrize("command", ["derive", "conformance"])
def test_an_import_error_names_the_extra_too(command):
    # a checkout run without being pip-installed has no metadata: the import itself fails
    extra = COMMANDS[command][1]
    blocked = _modules_of(extra)
    code = (f"import sys\nfor m in {blocked!r}: sys.modules[m] = None\n"
            "import dgpo_cli\ndgpo_cli._not_installed = lambda extra: []\n"
            f"sys.exit(dgpo_cli.main({[command, '--help']!r}))")
    out = _run(code)
    assert out.returncode == 2, (out.stdout[-300:], out.stderr[-300:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'dgpo[{extra}]'" in lines[0], out.stderr


def test_verl_check_without_verl_names_the_extra():
    # verl is never in .venv (it lives in .venv-verl), so this is the real missing-extra case
    out = _run("import sys, dgpo_cli\nsys.exit(dgpo_cli.main(['verl-check']))")
    assert out.returncode == 2 and "dgpo[verl]" in out.stderr and len(out.stderr.strip().splitlines()) == 1


# --- packaging and the parts' dependency rules (shared/DESIGN.md) ----------------------------------
def _top_level_imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _sources(*parts: str) -> list[Path]:
    return [p for part in parts for p in ([ROOT / part] if part.endswith(".py") else (ROOT / part).rglob("*.py"))]


def test_the_wheel_holds_every_part():
    """pyproject's package list covers every top-level package and module of the checkout."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = tool["packages"]["find"]["include"]
    packages = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")
    assert "dgpo_conformance" in packages
    assert sorted(include) == sorted(f"{p}*" for p in packages)
    modules = sorted(p.stem for p in ROOT.glob("*.py"))
    assert sorted(tool["py-modules"]) == modules == ["clikit", "dgpo_cli"]


def test_no_part_imports_the_conformance_part_or_the_dispatcher():
    for path in _sources("spec", "proofs", "dgpo_ref"):
        assert "dgpo_conformance" not in _top_level_imports(path), path
    for path in _sources("spec", "proofs", "dgpo_ref", "dgpo_conformance", "trainer", "bench", "clikit.py"):
        assert "dgpo_cli" not in _top_level_imports(path), path
    project = {"spec", "proofs", "dgpo_ref", "dgpo_conformance", "trainer", "bench", "dgpo_cli"}
    assert not _top_level_imports(ROOT / "clikit.py") & project  # the shared CLI helpers are a leaf
    assert "dgpo_cli" in _top_level_imports(ROOT / "tests" / "test_install.py")  # control: the scan sees imports
