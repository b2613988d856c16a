"""Tests for hyperkit.config: typed YAML configs, overrides, saving, import paths."""

# String annotations on purpose: recipes use them, and they must resolve via get_type_hints.
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest
import yaml

from hyperkit import config
from hyperkit.config import (
    ConfigError,
    from_dict,
    import_path,
    load_config,
    parse_overrides,
    save_config,
    to_dict,
    to_yaml,
)


@dataclass
class DataConfig:
    name: str = "digits"
    batch_size: int = 64


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    clip: Optional[float] = None
    warmup: int | None = None
    milestones: list[int] = field(default_factory=list)
    betas: tuple[float, float] = (0.9, 0.999)
    widths: tuple[int, ...] = (64, 64)
    compile: bool = False
    loss_weights: dict[str, float] = field(default_factory=dict)


@dataclass
class UHNConfig:
    recipe: str = "uhn"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    target: dict = field(default_factory=dict)
    seed: int = 0
    output_dir: str = "runs/uhn"
    eval_data: Optional[DataConfig] = None


@dataclass
class Required:
    name: str
    steps: int = 1


@dataclass
class WithDerived:
    width: int = 4
    area: int = field(init=False)

    def __post_init__(self):
        self.area = self.width * self.width


FULL = {
    "recipe": "uhn",
    "data": {"name": "mnist", "batch_size": 32},
    "train": {
        "steps": 10, "lr": 3e-4, "precision": "bf16", "clip": 1.0, "warmup": 5,
        "milestones": [4, 8], "betas": [0.8, 0.99], "widths": [16, 32, 16], "compile": True,
        "loss_weights": {"task": 1.0, "init": 0.5},
    },
    "target": {"name": "mlp_tiny", "hidden": [64, 64]},
    "seed": 3,
    "output_dir": "runs/test",
    "eval_data": {"name": "digits"},
}


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def message(excinfo) -> str:
    return str(excinfo.value)


# --------------------------------------------------------------------------------------------
# from_dict


def test_empty_dict_gives_the_defaults():
    assert from_dict(UHNConfig, {}) == UHNConfig()


def test_nested_dataclasses_and_every_supported_type():
    cfg = from_dict(UHNConfig, FULL)
    assert cfg.data == DataConfig(name="mnist", batch_size=32)
    assert cfg.train.steps == 10 and cfg.train.lr == 3e-4 and cfg.train.precision == "bf16"
    assert cfg.train.clip == 1.0 and cfg.train.warmup == 5 and cfg.train.compile is True
    assert cfg.train.milestones == [4, 8]
    # YAML has no tuples: lists become tuples where the annotation says tuple.
    assert cfg.train.betas == (0.8, 0.99) and cfg.train.widths == (16, 32, 16)
    assert cfg.train.loss_weights == {"task": 1.0, "init": 0.5}
    assert cfg.target == {"name": "mlp_tiny", "hidden": [64, 64]}
    assert cfg.eval_data == DataConfig(name="digits", batch_size=64)
    assert (cfg.seed, cfg.output_dir) == (3, "runs/test")


def test_string_annotations_resolve_and_real_annotations_work_too():
    assert UHNConfig.__annotations__["seed"] == "int"  # this module's dataclasses are strings
    assert from_dict(UHNConfig, {"seed": 5}).seed == 5
    real = dataclasses.make_dataclass("Real", [("lr", float, 0.1), ("tags", list[str], None)])
    assert from_dict(real, {"lr": 2, "tags": ["a"]}) == real(lr=2.0, tags=["a"])
    with pytest.raises(ConfigError, match=r"'tags\[0\]' expects str, got int 1"):
        from_dict(real, {"tags": [1]})


def test_int_is_accepted_for_float_and_converted():
    cfg = from_dict(UHNConfig, {"train": {"lr": 1, "betas": [1, 0], "loss_weights": {"a": 2}}})
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float
    assert cfg.train.betas == (1.0, 0.0) and all(type(b) is float for b in cfg.train.betas)
    assert type(cfg.train.loss_weights["a"]) is float


def test_bool_is_not_an_int():
    with pytest.raises(ConfigError) as excinfo:
        from_dict(UHNConfig, {"train": {"steps": True}}, source="runs/a.yaml")
    assert "runs/a.yaml" in message(excinfo)
    assert "'train.steps' expects int, got bool True" in message(excinfo)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"train": {"lr": "fast"}}, "'train.lr' expects float, got str 'fast'"),
        ({"train": {"steps": 3.0}}, "'train.steps' expects int, got float 3.0"),
        ({"data": {"name": 5}}, "'data.name' expects str, got int 5; quote it"),
        ({"train": {"compile": "yes"}}, "'train.compile' expects bool, got str 'yes'"),
        ({"train": {"clip": "x"}}, "'train.clip' expects float | None, got str 'x'"),
        ({"train": {"warmup": 1.5}}, "'train.warmup' expects int | None, got float 1.5"),
        ({"train": {"milestones": [1, "x"]}}, "'train.milestones[1]' expects int, got str 'x'"),
        ({"train": {"milestones": 3}}, "'train.milestones' expects list[int], got int 3"),
        ({"train": {"widths": "64"}}, "'train.widths' expects tuple[int, ...], got str '64'"),
        ({"train": {"betas": [0.9]}}, "'train.betas' expects 2 items"),
        ({"train": {"loss_weights": {"a": "x"}}}, "'train.loss_weights.a' expects float"),
        ({"target": [1]}, "'target' expects dict, got list [1]"),
        ({"data": 5}, "'data' must be a mapping of keys for DataConfig, got int 5"),
    ],
)
def test_wrong_type_names_key_file_expected_and_given(data, expected):
    with pytest.raises(ConfigError) as excinfo:
        from_dict(UHNConfig, data, source="runs/a.yaml")
    assert message(excinfo).startswith("runs/a.yaml: ")
    assert expected in message(excinfo)


def test_literal_error_lists_the_choices():
    with pytest.raises(ConfigError) as excinfo:
        from_dict(UHNConfig, {"train": {"precision": "fp64"}}, source="runs/a.yaml")
    assert "runs/a.yaml" in message(excinfo) and "'train.precision'" in message(excinfo)
    assert "must be one of 'fp32', 'bf16', 'fp16'; got 'fp64'" in message(excinfo)


def test_unknown_nested_key_names_dotted_key_file_suggestion_and_valid_keys():
    with pytest.raises(ConfigError) as excinfo:
        from_dict(UHNConfig, {"train": {"lrr": 1}}, source="runs/a.yaml")
    text = message(excinfo)
    assert text.startswith("runs/a.yaml: unknown key 'train.lrr' (did you mean 'lr'?)")
    assert "valid keys under 'train': steps, lr, precision, clip" in text


def test_unknown_top_level_key_and_key_inside_optional_section():
    with pytest.raises(ConfigError, match=r"unknown key 'sed' \(did you mean 'seed'\?\); "
                                          r"valid keys at the top level: recipe, data"):
        from_dict(UHNConfig, {"sed": 1})
    with pytest.raises(ConfigError, match=r"unknown key 'eval_data.nme' \(did you mean 'name'"):
        from_dict(UHNConfig, {"eval_data": {"nme": "x"}})


def test_missing_required_key_and_non_init_field():
    with pytest.raises(ConfigError, match="a.yaml: missing required key 'name'"):
        from_dict(Required, {"steps": 2}, source="a.yaml")
    assert from_dict(WithDerived, {"width": 3}).area == 9
    with pytest.raises(ConfigError, match="unknown key 'area'"):
        from_dict(WithDerived, {"area": 1})


def test_free_form_values_are_copied_not_aliased():
    data = {"target": {"hidden": [64]}}
    cfg = from_dict(UHNConfig, data)
    data["target"]["hidden"].append(1)
    assert cfg.target == {"hidden": [64]}


def test_from_dict_needs_a_dataclass_type():
    with pytest.raises(TypeError, match="needs a dataclass type"):
        from_dict(dict, {})


# --------------------------------------------------------------------------------------------
# parse_overrides


def test_parse_overrides_nests_dotted_keys_and_reads_values_as_yaml():
    items = ["a.b=1", "a.c=[1, 2]", "d=hello", "e=true", "f=null", "g=3e-4", "h=x=y", "a.b=2"]
    assert parse_overrides(items) == {
        "a": {"b": 2, "c": [1, 2]}, "d": "hello", "e": True, "f": None, "g": 3e-4, "h": "x=y",
    }


@pytest.mark.parametrize(
    "items, expected",
    [
        (["train.lr"], "override 'train.lr' has no '='; write key=value"),
        (["train..lr=1"], "empty key part"),
        (["a=[1,"], "the value is not valid YAML"),
        (["a=1", "a.b=2"], "sets a key inside 'a', which an earlier override set to 1"),
    ],
)
def test_parse_overrides_errors(items, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        parse_overrides(items)


def test_parse_overrides_rejects_a_bare_string():
    with pytest.raises(TypeError, match="wrap it in a list"):
        parse_overrides("train.lr=1")


# --------------------------------------------------------------------------------------------
# load_config


RUN_YAML = """\
# python -m hyperkit.cli train recipes/configs/uhn/debug.yaml
recipe: uhn
data:
  name: digits
train:
  steps: 10
  lr: 3e-4        # YAML 1.1 would read this as a string; the loader reads it as a float
target:
  name: mlp_tiny
  hidden: [32]
"""


def test_load_config_reads_yaml_with_exponent_floats(tmp_path):
    cfg = load_config(UHNConfig, write(tmp_path, RUN_YAML))
    assert cfg.train.lr == 3e-4 and type(cfg.train.lr) is float
    assert cfg.train.steps == 10 and cfg.data == DataConfig()
    assert cfg.target == {"name": "mlp_tiny", "hidden": [32]}


def test_load_config_applies_overrides(tmp_path):
    overrides = ["train.lr=1e-2", "data.name=mnist", "target.hidden=[64,64]", "seed=7",
                 "train.compile=true", "train.clip=0.5", "train.widths=[8]", "target.act=relu",
                 "eval_data.batch_size=16"]
    cfg = load_config(UHNConfig, write(tmp_path, RUN_YAML), overrides)
    assert cfg.train.lr == 1e-2 and cfg.data.name == "mnist" and cfg.seed == 7
    assert cfg.train.compile is True and cfg.train.clip == 0.5 and cfg.train.widths == (8,)
    # Overrides merge into the file's sections: target keeps its name, steps stays 10.
    assert cfg.target == {"name": "mlp_tiny", "hidden": [64, 64], "act": "relu"}
    assert cfg.train.steps == 10
    assert cfg.eval_data == DataConfig(name="digits", batch_size=16)


def test_override_of_unknown_key_names_key_and_valid_choices(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_config(UHNConfig, write(tmp_path, RUN_YAML), ["train.lrr=1"])
    text = message(excinfo)
    assert text.endswith("run.yaml: override 'train.lrr=1': unknown key 'train.lrr' (did you mean 'lr'?); "
                         "valid keys under 'train': steps, lr, precision, clip, warmup, milestones, betas, widths, "
                         "compile, loss_weights")
    assert "valid keys under 'train': steps, lr" in text


def test_override_inside_a_value_or_with_wrong_type(tmp_path):
    path = write(tmp_path, RUN_YAML)
    with pytest.raises(ConfigError, match="'train.lr' is a float value, not a section"):
        load_config(UHNConfig, path, ["train.lr.x=1"])
    with pytest.raises(ConfigError) as excinfo:
        load_config(UHNConfig, path, ["train.steps=abc"])
    assert str(path) in message(excinfo) and "train.steps=abc" in message(excinfo)
    assert "'train.steps' expects int, got str 'abc'" in message(excinfo)


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = write(tmp_path, "train:\n  stepz: 3\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(UHNConfig, path)
    assert message(excinfo).startswith(f"{path}: unknown key 'train.stepz' (did you mean 'steps'?)")


def test_load_config_file_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"config file '{missing}' does not exist"):
        load_config(UHNConfig, missing)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(UHNConfig, write(tmp_path, "train: [1,\n", "bad.yaml"))
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(UHNConfig, write(tmp_path, "- 1\n", "list.yaml"))


def test_empty_file_gives_defaults_and_recipe_key_is_dropped_when_not_a_field(tmp_path):
    assert load_config(UHNConfig, write(tmp_path, "", "empty.yaml")) == UHNConfig()
    cfg = load_config(TrainConfig, write(tmp_path, "recipe: uhn\nsteps: 5\n", "train.yaml"))
    assert cfg == TrainConfig(steps=5)


# --------------------------------------------------------------------------------------------
# to_dict, to_yaml, save_config


def test_round_trip_to_dict_from_dict():
    cfg = from_dict(UHNConfig, FULL)
    plain = to_dict(cfg)
    assert plain["train"]["betas"] == [0.8, 0.99]  # plain data: tuples became lists
    assert from_dict(UHNConfig, plain) == cfg
    assert from_dict(UHNConfig, to_dict(UHNConfig())) == UHNConfig()
    assert to_dict(WithDerived(width=2)) == {"width": 2}  # init=False fields are not written


def test_to_yaml_keeps_declaration_order_and_reloads():
    cfg = from_dict(UHNConfig, FULL)
    text = to_yaml(cfg)
    assert text.startswith("recipe: uhn\ndata:\n  name: mnist\n  batch_size: 32\ntrain:\n")
    assert yaml.safe_load(text) == to_dict(cfg)


def test_to_dict_rejects_values_yaml_cannot_store():
    with pytest.raises(ConfigError, match="'target.ids' is a set, which YAML cannot store"):
        to_dict(UHNConfig(target={"ids": {1, 2}}))


def test_save_config_writes_atomically_and_loads_back(tmp_path):
    cfg = from_dict(UHNConfig, FULL)
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert path == tmp_path / "run" / "config.yaml"
    assert os.listdir(path.parent) == ["config.yaml"]  # no temp file left behind
    assert load_config(UHNConfig, path) == cfg


def test_save_config_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_config(UHNConfig(seed=1), tmp_path / "config.yaml")

    def fail_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(config.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        save_config(UHNConfig(seed=2), path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["config.yaml"]
    assert load_config(UHNConfig, path).seed == 1


def test_save_config_with_unstorable_value_writes_nothing(tmp_path):
    with pytest.raises(ConfigError):
        save_config(UHNConfig(target={"ids": {1, 2}}), tmp_path / "config.yaml")
    assert os.listdir(tmp_path) == []




# --------------------------------------------------------------------------------------------
# import paths


def test_import_path_finds_a_module_attribute_and_says_what_it_tried(tmp_path, monkeypatch):
    assert import_path("collections.OrderedDict") is __import__("collections").OrderedDict
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_builders_for_test.py").write_text("def tiny():\n    return 'built'\n")
    assert import_path("my_builders_for_test.tiny")() == "built"  # the working folder is searched
    with pytest.raises(LookupError, match=r"no module 'no_such_package'.*searched the working folder"):
        import_path("no_such_package.Thing")
    with pytest.raises(LookupError, match=r"has no attribute 'tny' \(did you mean 'tiny'\?\)"):
        import_path("my_builders_for_test.tny")
    (tmp_path / "broken_for_test.py").write_text("import no_such_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency"):  # the user's own error, as raised
        import_path("broken_for_test.thing")
