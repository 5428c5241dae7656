"""The hostile-input table for ``dgpo train``: every config field, fed values it must refuse.

The fields come from ``TrainConfig`` itself, so a new field inherits the table: a number, flag or
text field must have a row in ``trainer.config.DOMAINS`` (the test below fails otherwise) and then
gets the generic hostile values of its type (nan, ±inf, negative, zero where its domain excludes
it, wrong type, NUL, empty where it must not be). Each value runs through the real CLI path
(``dgpo_cli.main`` with argv: ``--set`` parsing, then validation inside ``train``), and must give exit
status 2, one line on stderr naming the field, and no run folder. The same numbers go through
``--print-config``, which must validate too.
"""

from __future__ import annotations

import dataclasses

import pytest

import dgpo_cli
from trainer import loop
from trainer.config import DOMAINS, Domain, TrainConfig, build_config

DEFAULTS = TrainConfig()
STRUCTURED = {
    # fields that are not a single number, flag or text: their own bad values
    "adam_betas": ["[0.9]", "[0.9, 0.999, 0.5]", "[1.0, 0.999]", "[0.9, -0.1]", "[NaN, 0.999]",
                   "[0.9, Infinity]", "0.9", '"ab"', '[true, 0.9]', "{}"],
    "loss_hparams": ["[1]", '{"eps_low": NaN}', '{"eps_high": Infinity}', '{"n": -1}', '{"nope": 1}',
                     '{"eps_low": "0.2"}', "1"],
}
REGISTRY_TEXT = {"model", "task", "device", "reward", "loss", "loss_agg_mode"}
"""Text fields naming something that must exist (a registry entry, a model, a task)."""
FREE_TEXT = {"system_prompt", "eval_task", "prompt_field", "answer_field", "prompt_suffix"}
"""Text fields where any text without NUL is a legal value for the smoke preset's generated task."""
PATH_TEXT = {"eval_cache"}
"""Text fields naming a folder: NUL is refused here, an existing file in tests/test_eval_cache.py."""

HOSTILE_NUMBERS = {
    int: ["nan", "inf", "-inf", "-1", "1.5", "abc", "", "1e3", "true"],
    float: ["nan", "inf", "-inf", "-1", "-1e-300", "abc", "", "1e400", "NaN"],
    bool: ["nan", "maybe", "2", "", "-1"],
}


def _kind(name: str) -> type:
    return type(getattr(DEFAULTS, name))


def _fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _zero_allowed(name: str) -> bool:
    return name in DOMAINS and DOMAINS[name].problem(_kind(name)(0)) is None


def _bad_values(name: str) -> list[str]:
    if name in STRUCTURED:
        return STRUCTURED[name]
    kind = _kind(name)
    if kind in HOSTILE_NUMBERS:
        return HOSTILE_NUMBERS[kind] + ([] if kind is bool or _zero_allowed(name) else ["0"])
    domain = DOMAINS.get(name, Domain(str))
    closed = bool(domain.choices) or name in REGISTRY_TEXT
    return ["a\x00b"] + ([""] if not domain.empty_ok else []) + (["nope-not-a-choice"] if closed else [])


CASES = [(name, raw) for name in _fields() for raw in _bad_values(name)]


def test_every_field_has_a_domain_or_its_own_bad_values():
    missing = [n for n in _fields() if n not in DOMAINS and n not in STRUCTURED]
    assert not missing, f"fields without a row in trainer.config.DOMAINS: {missing}"
    assert set(DOMAINS) <= set(_fields()), set(DOMAINS) - set(_fields())
    for name in _fields():
        if name in DOMAINS:
            assert DOMAINS[name].kind is _kind(name), name
            assert DOMAINS[name].problem(getattr(DEFAULTS, name)) is None, f"default of {name} outside its domain"
        if _kind(name) is str:
            assert DOMAINS[name].choices or name in REGISTRY_TEXT | FREE_TEXT | PATH_TEXT, f"classify text field {name}"


@pytest.fixture
def no_model(monkeypatch):
    """A value that wrongly passes validation fails fast here instead of training."""

    def refuse(name):
        raise AssertionError(f"validation passed and a model was loaded ({name})")

    monkeypatch.setattr(loop, "resolve_model", refuse)


def _one_line_error(capsys, name: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dgpo train: error: "), err
    assert name in err, err
    return err


@pytest.mark.parametrize("name, raw", CASES, ids=[f"{n}={r!r}" for n, r in CASES])
def test_train_refuses_with_one_line_and_no_folder(tmp_path, capsys, no_model, name, raw):
    out = tmp_path / "run"
    rc = dgpo_cli.main(["train", "--preset", "smoke", "--output", str(out), "--set", f"{name}={raw}"])
    assert rc == 2
    _one_line_error(capsys, name)
    assert not out.exists()


NUMERIC = [(n, r) for n, r in CASES if _kind(n) in HOSTILE_NUMBERS or n in STRUCTURED]


@pytest.mark.parametrize("name, raw", NUMERIC, ids=[f"{n}={r!r}" for n, r in NUMERIC])
def test_print_config_validates_too(capsys, name, raw):
    assert dgpo_cli.main(["train", "--print-config", "--set", f"{name}={raw}"]) == 2
    _one_line_error(capsys, name)


ZERO_OK = [n for n in _fields() if _kind(n) in (int, float) and _zero_allowed(n)]


@pytest.mark.parametrize("name", ZERO_OK)
def test_zero_is_accepted_where_the_domain_allows_it(capsys, name):
    assert dgpo_cli.main(["train", "--print-config", "--set", f"{name}=0"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("sets, message", [
    (["lr=inf"], "lr must be a finite number > 0"),
    (["weight_decay=inf"], "weight_decay must be a finite number >= 0"),
    (["tis_cap=nan"], "tis_cap must be 0 (off) or a finite number >= 1"),
    (["tis_cap=0.5"], "tis_cap must be 0 (off)"),
    (["max_grad_norm=nan"], "max_grad_norm must be a finite number >= 0"),
    (["adam_betas=[0.9]"], "adam_betas must be two numbers in [0, 1)"),
    (["top_p=0"], "top_p must be a finite number in (0, 1]"),
    (["group_size=1"], "group_size must be an integer >= 2"),
])
def test_the_named_probes_of_issue_17(capsys, sets, message):
    assert dgpo_cli.main(["train", "--print-config", *[a for s in sets for a in ("--set", s)]]) == 2
    assert message in capsys.readouterr().err


def test_the_presets_pass_their_own_checks():
    from trainer.config import PRESETS, _check_betas

    for preset in PRESETS:
        cfg = build_config(preset)
        for name, domain in DOMAINS.items():
            assert domain.problem(getattr(cfg, name)) is None, (preset, name)
        _check_betas(cfg.adam_betas)
