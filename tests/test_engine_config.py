"""Configs: defaults, YAML, overrides, strict errors that name the key and the source, round trips."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest
import yaml

from pixelwise.engine.config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


class Mode(enum.Enum):
    FAST = "fast"
    GOOD = "good"


@dataclass
class Extra:
    scale: float = 1.0
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class UpsampleConfig:
    model: str = "pac_upsampler_lite"
    factor: int = 8
    train: TrainConfig = field(default_factory=TrainConfig)
    data_root: Path = Path("data")
    mode: Mode = Mode.FAST
    split: Literal["train", "val"] = "train"
    extra: Optional[Extra] = None
    weights: dict[str, float] = field(default_factory=dict)


def test_defaults():
    cfg = TrainConfig()
    assert cfg.steps == 1000 and cfg.batch_size == 8 and cfg.grad_clip is None and cfg.device == "auto"
    assert cfg.optimizer == OptimizerConfig() and cfg.optimizer.betas == (0.9, 0.999)
    assert cfg.schedule.milestones == [] and cfg.schedule.gamma == 0.1
    assert load_config(TrainConfig) == TrainConfig()
    # default_factory: two configs do not share their lists
    a, b = TrainConfig(), TrainConfig()
    a.schedule.milestones.append(3)
    assert b.schedule.milestones == []


def test_yaml_file_and_nesting(tmp_path):
    path = tmp_path / "up.yaml"
    path.write_text(
        "factor: 4\n"
        "train:\n"
        "  steps: 20\n"
        "  grad_clip: 1          # int accepted for a float\n"
        "  optimizer: {name: sgd, lr: 3e-4, betas: [0.5, 0.9]}   # '3e-4' is a YAML string\n"
        "  schedule: {milestones: [5, 10]}\n"
        "data_root: /tmp/d\n"
        "mode: good\n"
        "extra: {scale: 2}\n"
        "weights: {l1: 1, ssim: 0.5}\n"
    )
    cfg = load_config(UpsampleConfig, path)
    assert cfg.factor == 4 and cfg.model == "pac_upsampler_lite"
    assert cfg.train.steps == 20 and cfg.train.batch_size == 8
    assert cfg.train.grad_clip == 1.0 and isinstance(cfg.train.grad_clip, float)
    assert cfg.train.optimizer.name == "sgd" and cfg.train.optimizer.lr == 3e-4
    assert cfg.train.optimizer.betas == (0.5, 0.9) and isinstance(cfg.train.optimizer.betas, tuple)
    assert cfg.train.schedule.milestones == [5, 10]
    assert cfg.data_root == Path("/tmp/d") and cfg.mode is Mode.GOOD
    assert cfg.extra == Extra(scale=2.0) and cfg.weights == {"l1": 1.0, "ssim": 0.5}


def test_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {steps: 20, grad_clip: 0.5}\n")
    cfg = load_config(
        UpsampleConfig,
        path,
        [
            "train.optimizer.lr=3e-4",
            "train.schedule.milestones=[100,200]",
            "train.grad_clip=null",
            "factor=2",
            "train.steps=30",
            "extra.scale=3",  # section that is None: starts from its defaults
            "mode=good",
        ],
    )
    assert cfg.train.optimizer.lr == 3e-4 and cfg.train.schedule.milestones == [100, 200]
    assert cfg.train.grad_clip is None and cfg.factor == 2 and cfg.train.steps == 30
    assert cfg.extra == Extra(scale=3.0) and cfg.mode is Mode.GOOD
    # later overrides win; whole sections can be given as a mapping
    cfg = load_config(TrainConfig, None, ["steps=5", "steps=6", "optimizer={name: adamw, lr: 0.01}"])
    assert cfg.steps == 6 and cfg.optimizer == OptimizerConfig(name="adamw", lr=0.01)


@pytest.mark.parametrize(
    "data, words",
    [
        ({"stepz": 3}, ["unknown key 'stepz'", "SRC"]),
        ({"optimizer": {"lrr": 1}}, ["unknown key 'optimizer.lrr'", "SRC"]),
        ({"steps": "ten"}, ["steps", "int", "'ten'", "SRC"]),
        ({"steps": 2.5}, ["steps", "int", "2.5"]),
        ({"quiet": 1}, ["quiet", "bool", "1"]),
        ({"steps": True}, ["steps", "int", "True"]),
        ({"optimizer": {"betas": [0.9]}}, ["optimizer.betas", "tuple[float, float]", "2 items"]),
        ({"schedule": {"milestones": [1, "x"]}}, ["schedule.milestones[1]", "int", "'x'"]),
        ({"optimizer": 3}, ["optimizer", "OptimizerConfig", "3"]),
        ({"grad_clip": "abc"}, ["grad_clip", "float | None", "'abc'"]),
        ({"optimizer": {"name": "rmsprop"}}, ["optimizer.name", "adam, adamw, sgd", "rmsprop", "SRC"]),
        ({"batch_size": 0}, ["batch_size", ">= 1", "SRC"]),
    ],
)
def test_from_dict_errors_name_key_type_and_source(data, words):
    with pytest.raises(ValueError) as e:
        config_from_dict(TrainConfig, data, source="SRC")
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_nested_errors_name_the_dotted_key():
    with pytest.raises(ValueError, match=r"unknown key 'train\.optimizer\.lrr'"):
        config_from_dict(UpsampleConfig, {"train": {"optimizer": {"lrr": 1}}})
    with pytest.raises(ValueError, match=r"split must be .*Literal.*'test'"):
        config_from_dict(UpsampleConfig, {"split": "test"})
    with pytest.raises(ValueError, match=r"mode must be Mode.*'slow'.*choices"):
        config_from_dict(UpsampleConfig, {"mode": "slow"})
    with pytest.raises(ValueError, match=r"unknown key 'extra\.scal'"):
        config_from_dict(UpsampleConfig, {"extra": {"scal": 1}})


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ValueError, match="nope.yaml does not exist"):
        load_config(TrainConfig, missing)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml must hold a mapping"):
        load_config(TrainConfig, listy)
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        load_config(TrainConfig, bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("optimizer:\n  lrr: 0.1\n")
    with pytest.raises(ValueError, match=r"typo.yaml: unknown key 'optimizer.lrr'"):
        load_config(TrainConfig, typo)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(TrainConfig, empty) == TrainConfig()


@pytest.mark.parametrize(
    "override, words",
    [
        ("steps", ["override 'steps'", "key=value"]),
        ("optimizer.lrr=1", ["override 'optimizer.lrr=1'", "unknown key 'optimizer.lrr'"]),
        ("nope.x=1", ["unknown key 'nope'"]),
        ("steps.x=1", ["'steps' is not a section"]),
        ("steps=[1, 2", ["override 'steps=[1, 2'", "not valid YAML"]),
        ("grad_clip=fast", ["override 'grad_clip=fast'", "grad_clip", "'fast'"]),
        ("optimizer.name=foo", ["override 'optimizer.name=foo'", "optimizer.name", "'foo'"]),
        ("=3", ["empty key"]),
    ],
)
def test_override_errors_name_the_override(override, words):
    with pytest.raises(ValueError) as e:
        load_config(TrainConfig, None, [override])
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_round_trips(tmp_path):
    cfg = UpsampleConfig(
        factor=16,
        train=TrainConfig(steps=7, grad_clip=0.25, optimizer=OptimizerConfig(name="sgd", betas=(0.8, 0.99)),
                          schedule=ScheduleConfig(milestones=[3], gamma=0.5)),
        data_root=Path("x/y"), mode=Mode.GOOD, extra=Extra(2.0, ["b", "c"]), weights={"l1": 0.5},
    )
    data = config_to_dict(cfg)
    # plain YAML-able types only: lists not tuples, str not Path, enum values
    assert data["train"]["optimizer"]["betas"] == [0.8, 0.99] and data["data_root"] == "x/y" and data["mode"] == "good"
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    assert config_from_dict(UpsampleConfig, data) == cfg
    path = tmp_path / "sub" / "cfg.yaml"
    save_config(cfg, path)
    assert load_config(UpsampleConfig, path) == cfg
    assert not [p for p in path.parent.iterdir() if p.name != "cfg.yaml"]  # no temp files left
    save_config(TrainConfig(), path)
    assert load_config(TrainConfig, path) == TrainConfig()
