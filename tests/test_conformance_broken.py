"""Tests of the tests: `dgpo conformance` rejects each broken DGPO by the property named for it,
and passes dgpo_ref, a clean independent DGPO, and the same loss behind verl's signature.

Each broken implementation runs only its named property (in-process, ci profile) to stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dgpo_cli
from dgpo_conformance import properties as C

BROKEN = Path(__file__).with_name("broken_impls.py")
EXPECTED_REJECTION = {
    "const_off": "gradient",
    "gppo_weight": "gradient",
    "nan_leak": "finiteness",
    "per_sequence": "invariance",
    "right_hard_clip": "continuity",
    "clamp_extreme": "gradient",
    "own_normalizer": "aggregation",
    "value_shift": "value",
    "zero_adv_in_ln": "regions",
    "over_bound": "bounds",
    "bf16_autocast": "dtypes",
}


def _impl(name: str) -> str:
    return f"{BROKEN}:{name}"


def _rows(out: str) -> dict[str, str]:
    """The property table of `dgpo conformance`'s output: property -> pass / FAIL / n/a."""
    words = (ln.split() for ln in out.splitlines())
    return {w[0]: w[1] for w in words if len(w) >= 2 and w[0] in C.PROPERTIES}


def test_broken_table_matches_the_module():
    ns: dict = {}
    exec(compile(BROKEN.read_text(), str(BROKEN), "exec"), ns)
    assert ns["EXPECTED_REJECTION"] == EXPECTED_REJECTION
    assert len(EXPECTED_REJECTION) >= 6


@pytest.mark.parametrize("name, prop", sorted(EXPECTED_REJECTION.items()))
def test_broken_is_rejected_by_its_property(name, prop, capsys):
    rc = dgpo_cli.main(["conformance", "--impl", _impl(name), "--method", "dgpo", "--property", prop,
                        "--profile", "ci"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert _rows(out) == {prop: "FAIL"}, out
    assert f"[{prop}] first failing example:" in out
    assert "AssertionError" in out or "assert" in out.lower()


@pytest.mark.parametrize("target", ["dgpo_ref:policy_loss", str(BROKEN) + ":clean"])
def test_correct_losses_pass_every_property(target, capsys):
    rc = dgpo_cli.main(["conformance", "--impl", target, "--method", "dgpo"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert _rows(out) == {p: "pass" for p in C.PROPERTIES}, out


def test_verl_signature_passes_and_marks_missing_metrics_not_applicable(capsys):
    rc = dgpo_cli.main(["conformance", "--impl", _impl("verl_clean"), "--signature", "verl",
                        "--property", "gradient", "--property", "regions", "--property", "aggregation"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert _rows(out) == {"gradient": "pass", "regions": "n/a", "aggregation": "pass"}, out
    assert "not applicable" in out


def test_fixed_hparams_reach_the_implementation(capsys):
    # const_off with C_right 3% too large passes nothing that touches HP; with m = 2 fixed the
    # gradient property still sees HP tokens and rejects it
    rc = dgpo_cli.main(["conformance", "--impl", _impl("const_off"), "--property", "gradient",
                        "--n", "2", "--m", "3", "--eps-low", "0.2", "--eps-high", "0.28"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "eps_high=0.28" in out and "'m': 3" in out


@pytest.mark.parametrize("argv, message", [
    (["--impl", "no_such_module_xyz:loss"], "cannot import 'no_such_module_xyz'"),
    (["--impl", "dgpo_ref:LOSSES"], "is not callable"),
    (["--impl", "dgpo_ref:no_such_function"], "has no attribute"),
    (["--impl", "dgpo_ref"], "MODULE:FUNCTION"),
    (["--impl", "dgpo_ref:policy_loss", "--method", "nope"], "no generated tests"),
    (["--impl", "dgpo_ref:policy_loss", "--beta1", "2"], "not a hyper-parameter of dgpo"),
    (["--impl", "dgpo_ref:policy_loss", "--eps-low", "1.5"], "0 < eps_low < 1"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    rc = dgpo_cli.main(["conformance", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and err.startswith("dgpo conformance: error:")


def test_env_selects_the_implementation(monkeypatch):
    monkeypatch.setenv(C.IMPL_ENV, _impl("verl_clean"))
    monkeypatch.setenv(C.SIGNATURE_ENV, "verl")
    monkeypatch.setenv(C.HPARAMS_ENV, '{"n": 2}')
    impl = C.implementation_from_env("dgpo")
    assert impl.signature == "verl" and impl.fixed == {"n": 2} and not impl.require_metrics
    monkeypatch.delenv(C.IMPL_ENV)
    default = C.implementation_from_env("dgpo")
    assert default.label == "dgpo_ref:policy_loss" and default.require_metrics and default.pass_name
