"""Every command's options: one dataclass holds the defaults and the range of every number;
the CLI shows the range in --help, checks it before any work starts, and names the flag.
"""

from __future__ import annotations

import importlib
import math
import types
import typing
from dataclasses import MISSING, fields

import pytest
import typer

from gitool.cli.app import click_command
from gitool.config import Range, TrainConfig
from gitool.errors import InputError, opt

from helpers import assert_input_error, run_cli

# command -> its options dataclass ("module:Class")
OPTIONS = {
    "build-dataset": "gitool.config.build:BuildOptions",
    "import-basenji": "gitool.config.import_basenji:ImportBasenjiOptions",
    "train": "gitool.config.train:TrainConfig",
    "evaluate": "gitool.config.evaluate:EvaluateOptions",
    "predict": "gitool.config.predict:PredictOptions",
    "variants": "gitool.config.variants:VariantOptions",
    "attribute": "gitool.config.attribute:AttributeOptions",
    "marginalize": "gitool.config.marginalize:MarginalizeOptions",
    "modisco": "gitool.config.modisco:ModiscoOptions",
    "attention": "gitool.config.attention:AttentionOptions",
    "interactions": "gitool.config.interactions:InteractionsOptions",
    "synth-motifs": "gitool.config.synth_motifs:SynthMotifsOptions",
    "quickstart": "gitool.config.quickstart:QuickstartOptions",
}
# CLI parameters that are not options of the library (how the CLI reads the options)
CLI_ONLY = {"train": {"config"}}
# required arguments/options, given values that pass the CLI's parsing (the files need not
# exist: ranges are checked before any file is opened)
REQUIRED = {
    "build-dataset": ["genome.fa", "tracks.txt"],
    "import-basenji": ["release"],
    "predict": ["regions.bed", "-o", "out.bw"],
    "variants": ["calls.vcf", "-o", "scores.tsv"],
    "attribute": ["-o", "attr.npz"],
    "marginalize": ["--motif", "GATA1", "-o", "out.tsv"],
    "modisco": ["attr.npz", "-o", "out"],
    "interactions": ["-m", "run", "-o", "out"],
    "evaluate": ["-m", "run"],
}


def _options_class(command: str):
    module, name = OPTIONS[command].split(":")
    return getattr(importlib.import_module(module), name)


def _commands() -> dict:
    return click_command().commands


def _number_kind(param) -> type | None:
    """int or float for a numeric parameter (also ``int | None`` and ``list[int]``)."""
    annotation = param.type_descriptor.annotation
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation if annotation in (int, float) else None


def _numeric(param) -> bool:
    return _number_kind(param) is not None


def _ranged_params() -> list[tuple[str, str, str, Range]]:
    cases = []
    for name, command in sorted(_commands().items()):
        if name not in OPTIONS:
            continue
        cls = _options_class(name)
        for param in command.params:
            if _numeric(param):
                cases.append((name, param.name, param.opts[0], cls.range_of(param.name)))
    return cases


def test_every_command_with_options_has_a_dataclass():
    assert set(_commands()) - set(OPTIONS) == {"info", "models"}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_cli_parameters_are_fields_with_the_same_defaults(command):
    cls = _options_class(command)
    by_name = {f.name: f for f in fields(cls)}
    for param in _commands()[command].params:
        if param.name in CLI_ONLY.get(command, set()):
            continue
        assert param.name in by_name, f"{command}: --{param.name} is not a field of {cls.__name__}"
        default = by_name[param.name].default
        if param.default is None or default is MISSING or param.required:
            continue  # None: "the config's or the dataclass's value"
        cli_default = param.default
        if isinstance(cli_default, (tuple, list)):
            cli_default = tuple(cli_default) or None
            default = tuple(default) if isinstance(default, (tuple, list)) else default
        assert str(cli_default) == str(default), (command, param.name, cli_default, default)


@pytest.mark.parametrize(("command", "name", "flag", "allowed"), _ranged_params())
def test_every_number_has_a_range_shown_in_help(command, name, flag, allowed):
    assert allowed is not None, f"{command} {flag}: give {name} a range in its options dataclass"
    param = next(p for p in _commands()[command].params if p.name == name)
    assert param.help.endswith(f"Range: {allowed}."), (command, flag, param.help)


def _outside(allowed: Range, integer: bool) -> list[str]:
    step = 1 if integer else 0.5
    values = []
    if allowed.ge is not None:
        values.append(allowed.ge - step)
    if allowed.gt is not None:
        values.append(allowed.gt)
    if allowed.le is not None:
        values.append(allowed.le + step)
    if allowed.lt is not None:
        values.append(allowed.lt)
    texts = [str(int(v)) if integer else str(v) for v in values]
    return texts if integer else [*texts, "nan", "inf"]


@pytest.mark.parametrize(("command", "name", "flag", "allowed"), _ranged_params())
def test_values_outside_the_range_are_one_line_naming_the_flag(
    command, name, flag, allowed, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    param = next(p for p in _commands()[command].params if p.name == name)
    integer = _number_kind(param) is int
    for value in _outside(allowed, integer):
        code, _, err = run_cli([command, *REQUIRED.get(command, []), flag, value], capsys)
        assert_input_error(code, err, flag, value if value not in ("nan", "inf") else "")
        assert f"must be {allowed}" in err, err
        assert list(tmp_path.iterdir()) == [], f"{command} {flag} {value} wrote files"


def test_range_text_and_membership():
    assert str(Range(ge=0, le=1)) == "0 to 1"
    assert str(Range(gt=0, lt=1)) == "> 0 and < 1"
    assert str(Range(ge=1)) == ">= 1"
    assert 0.5 in Range(gt=0, lt=1) and 1 not in Range(gt=0, lt=1)
    assert math.nan not in Range(ge=0) and math.inf not in Range(ge=0)


def test_dataclass_checks_ranges_and_kinds_with_field_names():
    with pytest.raises(InputError) as err:
        TrainConfig(grad_clip=-1.0)
    assert err.value.field == "grad_clip" and str(err.value) == "grad_clip must be > 0, got -1.0"
    with pytest.raises(InputError, match="batch_size must be an integer"):
        TrainConfig(batch_size=2.5)
    with pytest.raises(InputError, match="lr must be > 0 and <= 1, got nan"):
        TrainConfig(lr=math.nan)
    assert TrainConfig(grad_clip=None, max_steps=None).grad_clip is None  # None = "choose"


def test_messages_name_fields_in_the_library_and_flags_in_the_cli(capsys, tmp_path, monkeypatch):
    err = InputError(f"data already exists; pass {opt('force')} to replace it", field="out")
    assert str(err) == "out data already exists; pass force to replace it"
    assert err.fields == ["out", "force"]
    assert err.render({"out": "-o", "force": "--force"}) == (
        "-o data already exists; pass --force to replace it"
    )
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_cli(["build-dataset", "g.fa", "t.txt", "-j", "0"], capsys)
    assert_input_error(code, stderr, "--workers must be >= 1, got 0")


def test_a_config_key_given_twice_is_refused(tmp_path):
    from gitool.config import load_yaml_config

    config = tmp_path / "c.yaml"
    config.write_text("lr: 0.1\nepochs: 2\nlr: 0.2\n")
    with pytest.raises(
        InputError, match=r"config \S*c.yaml line 3 column 1: not valid YAML \('lr' is"
    ):
        load_yaml_config(config, TrainConfig)
    config.write_text("lr: 0.1\n\tepochs: 2\n")  # a tab: PyYAML named no line
    with pytest.raises(
        InputError, match=r"c.yaml line 2 column 1: .*indent with spaces, not tabs$"
    ):
        load_yaml_config(config, TrainConfig)
    config.write_text("lr: 0.1\nmodel_config: {dims: [1, 2]}\n")  # nested values still load
    assert load_yaml_config(config, TrainConfig)["model_config"] == {"dims": [1, 2]}


def _value_params() -> list[tuple[str, str]]:
    """(command, flag) of every option that takes a value (text, path, number, choice)."""
    cases = []
    for name, command in sorted(_commands().items()):
        for param in command.params:
            if isinstance(param, typer.core.TyperOption) and not param.is_flag:
                cases.append((name, param.opts[0]))
    return cases


def param_required(command: str, flag: str) -> bool:
    """Whether the options dataclass field behind ``flag`` has no default (an option that is
    not a field, such as ``train --config``: whether the CLI requires it)."""
    param = next(p for p in _commands()[command].params if flag in p.opts)
    if command not in OPTIONS:
        return param.required
    field = next((f for f in fields(_options_class(command)) if f.name == param.name), None)
    if field is None:
        return param.required
    return field.default is MISSING and field.default_factory is MISSING


def test_value_options_are_found():
    found = set(_value_params())
    assert {
        ("predict", "--tracks"),
        ("train", "--heads"),
        ("build-dataset", "--valid-chroms"),
    } <= found


@pytest.mark.parametrize(("command", "flag"), _value_params())
def test_an_empty_value_is_one_line_naming_the_flag(command, flag, capsys, tmp_path, monkeypatch):
    """``--tracks ""`` (an unset shell variable in quotes) meant the default (all tracks),
    ``--data ""`` the current folder."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([command, *REQUIRED.get(command, []), flag, ""], capsys)
    assert_input_error(code, err, f"{flag} is empty; give a value")
    required = param_required(command, flag)
    assert ("leave the option out" in err) is not required, err  # only with a default
    assert list(tmp_path.iterdir()) == [], f"{command} {flag} '' wrote files"


def test_an_empty_item_of_a_list_is_refused():
    with pytest.raises(InputError, match="has an empty value") as err:
        TrainConfig(heads=["human", ""])
    assert err.value.field == "heads"


def test_an_empty_argument_or_equals_value_is_one_line_too(capsys, tmp_path, monkeypatch):
    """``gitool build-dataset "$GENOME" tracks.txt`` with GENOME unset blamed ``-o`` (the
    empty path was the current folder, which holds the output)."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["build-dataset", "", "tracks.txt", "-o", "d"], capsys)
    assert_input_error(code, err, "GENOME is empty; give a value")
    code, _, err = run_cli(["predict", "regions.bed", "--out=", "--force"], capsys)
    assert_input_error(code, err, "--out is empty; give a value")
    code, _, err = run_cli(["predict", "regions.bed", "-o=x.bw"], capsys)  # click: "=x.bw"
    assert_input_error(code, err, "-o=x.bw: a short option takes its value after a space")
    code, _, err = run_cli(["predict", "-o", "x.bw", "--", ""], capsys)
    assert_input_error(code, err, "REGIONS is empty")
    code, out, _ = run_cli(["predict", "", "--help"], capsys)
    assert code == 0 and "Usage: gitool predict" in out
    code, _, err = run_cli(["predict", "--force", "", "-o", "x.bw"], capsys)
    assert_input_error(code, err, "REGIONS is empty")  # --force takes no value
    code, _, err = run_cli(["evaluate", "--data=", "-m", "r"], capsys)
    assert_input_error(code, err, "--data is empty; give a value, or leave the option out")
    assert list(tmp_path.iterdir()) == []
