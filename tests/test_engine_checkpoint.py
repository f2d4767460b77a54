"""Checkpoints: exact round trips (model + optimizer + scheduler), clear errors, atomic writes."""

from __future__ import annotations

import collections
import json
import math
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import pixelwise.engine.checkpoint as ckmod
from pixelwise.engine.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    load_weights,
    restore_training_state,
    save_checkpoint,
)
from pixelwise.engine.config import OptimizerConfig, ScheduleConfig
from pixelwise.engine.trainer import build_optimizer, build_scheduler


class Net(nn.Module):
    def __init__(self, width: int = 8, extra: bool = False):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 5, padding=2), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(width, 1, 1)
        self.decoder = nn.Conv2d(1, 1, 3, padding=1) if extra else None

    def forward(self, x):
        y = self.head(self.encoder(x))
        return self.decoder(y) if self.decoder is not None else y


def factory(name, **kw):
    assert name == "net"
    return Net(**kw)


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)) for _ in range(n)]


def run_steps(model, opt, sched, data):
    for x, y in data:
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_round_trip_continues_bitwise(tmp_path, name):
    ocfg = OptimizerConfig(name=name, lr=1e-2, weight_decay=1e-3)
    scfg = ScheduleConfig(milestones=[2, 4], gamma=0.5)
    torch.manual_seed(0)
    model = Net()
    opt = build_optimizer(model.parameters(), ocfg)
    sched = build_scheduler(opt, scfg)
    data = batches(6)
    run_steps(model, opt, sched, data[:3])
    path = save_checkpoint(tmp_path / "ck" / "step-0000003", model, model_name="net", model_config={"width": 8},
                           step=3, metrics={"psnr": 30.5}, config={"a": 1}, optimizer=opt, scheduler=sched,
                           train_state={"epoch": 1})
    assert path == tmp_path / "ck" / "step-0000003.safetensors"
    run_steps(model, opt, sched, data[3:])  # the run that never stopped

    torch.manual_seed(123)  # a different init: everything must come from the file
    model2 = Net()
    opt2 = build_optimizer(model2.parameters(), ocfg)
    sched2 = build_scheduler(opt2, scfg)
    ckpt = load_checkpoint(path)
    load_weights(model2, ckpt)
    assert restore_training_state(ckpt, opt2, sched2) == {"epoch": 1}
    assert sched2.milestones == collections.Counter({2: 1, 4: 1})  # int keys survive JSON
    run_steps(model2, opt2, sched2, data[3:])
    assert same_state(model, model2)
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == 1e-2 * 0.25
    for s1, s2 in zip(opt.state.values(), opt2.state.values()):
        for k in s1:
            assert torch.equal(s1[k], s2[k]), k


def test_files_and_sidecar(tmp_path):
    model = Net()
    opt = torch.optim.Adam(model.parameters())
    nn.functional.mse_loss(model(torch.randn(2, 1, 8, 8)), torch.zeros(2, 1, 8, 8)).backward()
    opt.step()
    stem = tmp_path / "run" / "step-0000500"
    save_checkpoint(str(stem) + ".json", model, model_name="net", model_config={"width": 8}, step=500, optimizer=opt,
                    metrics={"loss": float("nan")})  # a suffix given is stripped
    meta = json.loads((tmp_path / "run" / "step-0000500.json").read_text())  # strict JSON parser is fine
    assert meta["format_version"] == FORMAT_VERSION and meta["model_name"] == "net" and meta["step"] == 500
    assert set(meta["versions"]) == {"pixelwise", "torch", "python"}
    assert meta["tensors"]["model.encoder.0.weight"] == {"dtype": "float32", "shape": [8, 1, 5, 5]}
    assert meta["tensors"]["model.encoder.1.num_batches_tracked"]["dtype"] == "int64"
    tensors = load_file(tmp_path / "run" / "step-0000500.safetensors")
    assert "model.head.weight" in tensors and "optim.state.0.exp_avg" in tensors and "optim.state.0.step" in tensors
    assert not any(k.startswith("model.module.") for k in tensors)
    # any of stem / .json / .safetensors loads the same checkpoint
    for p in (stem, stem.with_name("step-0000500.json"), stem.with_name("step-0000500.safetensors")):
        ck = load_checkpoint(p)
        assert ck.step == 500 and ck.model_config == {"width": 8} and math.isnan(ck.metrics["loss"])


def test_train_state_values_round_trip(tmp_path):
    state = {
        "counter": collections.Counter({3: 2}),
        "int_keys": {1: "a", 2: (1, 2.5)},
        "tuple": (1, (2, None), [3]),
        "floats": [float("inf"), -0.0, 1e-300],
        "bytes": b"\x00\xffab",
        "array": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "rng": torch.get_rng_state(),
        "tagged": {"__tuple__": 1},
        "bf16": torch.ones(3, dtype=torch.bfloat16),
    }
    save_checkpoint(tmp_path / "c", Net(), model_name="net", model_config={}, train_state=state)
    back = load_checkpoint(tmp_path / "c").train_state
    assert back["counter"] == state["counter"] and isinstance(back["counter"], collections.Counter)
    assert back["int_keys"] == state["int_keys"] and back["tuple"] == state["tuple"]
    assert back["floats"][0] == math.inf and math.copysign(1, back["floats"][1]) == -1 and back["floats"][2] == 1e-300
    assert back["bytes"] == state["bytes"] and back["tagged"] == {"__tuple__": 1}
    assert back["array"].dtype == np.uint32 and (back["array"] == state["array"]).all()
    assert torch.equal(back["rng"], state["rng"]) and back["bf16"].dtype == torch.bfloat16
    with pytest.raises(TypeError, match="object.*'state.bad'"):
        save_checkpoint(tmp_path / "d", Net(), model_name="net", model_config={}, train_state={"bad": object()})


def test_ddp_style_wrapper_is_unwrapped(tmp_path):
    model = Net()
    path = save_checkpoint(tmp_path / "w", nn.DataParallel(model), model_name="net", model_config={})
    ck = load_checkpoint(path)
    assert set(ck.model_state) == set(model.state_dict())
    wrapped = nn.DataParallel(Net())
    load_weights(wrapped, ck)
    assert same_state(wrapped.module, model)


def test_load_model_with_factory(tmp_path):
    model = Net(width=4, extra=True)
    save_checkpoint(tmp_path / "m", model, model_name="net", model_config={"width": 4, "extra": True})
    loaded, ck = load_model(tmp_path / "m.safetensors", factory)
    assert isinstance(loaded, Net) and not loaded.training and same_state(loaded, model)
    assert ck.model_name == "net"


def test_mismatch_messages_list_names(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", Net(width=12), model_name="pac_upsampler_lite", model_config={})
    with pytest.raises(CheckpointError) as e:
        load_weights(Net(width=8, extra=True), path)
    msg = str(e.value)
    assert str(path) in msg and "does not match model 'pac_upsampler_lite'" in msg
    assert "missing 2 tensors (decoder.weight, decoder.bias)" in msg
    assert "shape of encoder.0.weight is (12,1,5,5) in the file, (8,1,5,5) in the model" in msg
    assert "shape of encoder.1.running_mean is (12) in the file, (8) in the model" in msg
    with pytest.raises(CheckpointError, match=r"unexpected 2 tensors \(decoder.weight, decoder.bias\)"):
        load_weights(Net(width=4), save_checkpoint(tmp_path / "x", Net(width=4, extra=True), model_name="n", model_config={}))
    # non-strict: names that exist in both are loaded, the rest is reported
    src = Net(width=4, extra=True)
    dst = Net(width=4)
    res = load_weights(dst, save_checkpoint(tmp_path / "y", src, model_name="n", model_config={}), strict=False)
    assert res.unexpected == ["decoder.weight", "decoder.bias"] and res.missing == []
    assert torch.equal(dst.head.weight, src.head.weight)
    with pytest.raises(CheckpointError, match="shape of head.weight"):  # shapes still must match
        load_weights(Net(width=5), tmp_path / "y", strict=False)


def test_corrupt_and_missing_files(tmp_path):
    path = save_checkpoint(tmp_path / "c", Net(), model_name="net", model_config={})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match=r"c\.safetensors: corrupt or truncated"):
        load_checkpoint(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # a bit flip inside tensor data: the header still parses
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"c\.safetensors: contents do not match the SHA-256"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"c\.safetensors"):
        load_checkpoint(path)
    path.unlink()
    with pytest.raises(CheckpointError, match=r"c\.safetensors: tensor file is missing"):
        load_checkpoint(tmp_path / "c")

    path = save_checkpoint(tmp_path / "d", Net(), model_name="net", model_config={})
    js = tmp_path / "d.json"
    text = js.read_text()
    js.write_text(text[:-40])
    with pytest.raises(CheckpointError, match=r"d\.json: invalid JSON"):
        load_checkpoint(path)
    js.write_text(text.replace(f'"format_version": {FORMAT_VERSION}', f'"format_version": {FORMAT_VERSION + 1}'))
    with pytest.raises(CheckpointError, match=rf"d\.json: checkpoint format version {FORMAT_VERSION + 1} is newer"):
        load_checkpoint(path)
    js.write_text("{}")
    with pytest.raises(CheckpointError, match=r"d\.json: not a pixelwise checkpoint"):
        load_checkpoint(path)
    js.unlink()
    with pytest.raises(CheckpointError, match=r"d\.json: checkpoint metadata file is missing"):
        load_checkpoint(path)
    assert issubclass(CheckpointError, ValueError)


def test_restore_needs_optimizer_state(tmp_path):
    model = Net()
    path = save_checkpoint(tmp_path / "inf", model, model_name="net", model_config={})
    with pytest.raises(CheckpointError, match="inf.safetensors: has no optimizer state"):
        restore_training_state(path, torch.optim.Adam(model.parameters()), None)
    opt = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "o", model, model_name="net", model_config={}, optimizer=opt)
    with pytest.raises(CheckpointError, match="o.safetensors: optimizer state does not fit"):
        restore_training_state(path, torch.optim.Adam(Net(extra=True).parameters()), None)


def test_atomic_order_and_no_temp_files(tmp_path, monkeypatch):
    order = []
    real_bytes, real_text = ckmod.write_bytes_atomic, ckmod.write_text_atomic
    monkeypatch.setattr(ckmod, "write_bytes_atomic", lambda p, d: (order.append(p.suffix), real_bytes(p, d)))
    monkeypatch.setattr(ckmod, "write_text_atomic", lambda p, t: (order.append(p.suffix), real_text(p, t)))
    ck_dir = tmp_path / "run" / "checkpoints"
    save_checkpoint(ck_dir / "step-0000010", Net(), model_name="net", model_config={}, step=10)
    assert order == [".safetensors", ".json"]
    assert sorted(p.name for p in ck_dir.iterdir()) == ["step-0000010.json", "step-0000010.safetensors"]

    # A crash while writing the JSON leaves an incomplete checkpoint that is ignored...
    def crash(p, t):
        raise OSError("disk full")

    monkeypatch.setattr(ckmod, "write_text_atomic", crash)
    with pytest.raises(OSError):
        save_checkpoint(ck_dir / "step-0000020", Net(), model_name="net", model_config={}, step=20)
    assert latest_checkpoint(tmp_path / "run") == ck_dir / "step-0000010.safetensors"
    # ... and so does a crash while overwriting an existing checkpoint: its old JSON is gone first.
    with pytest.raises(OSError):
        save_checkpoint(ck_dir / "step-0000010", Net(width=3), model_name="net", model_config={}, step=10)
    assert latest_checkpoint(tmp_path / "run") is None
    assert not [p for p in ck_dir.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_latest_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    ck_dir = tmp_path / "checkpoints"
    for step in (5, 40, 300):
        save_checkpoint(ck_dir / f"step-{step:07d}", Net(), model_name="net", model_config={}, step=step)
    (ck_dir / "step-0000900.safetensors").write_bytes(b"partial")  # no .json: incomplete
    (ck_dir / "notes.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == ck_dir / "step-0000300.safetensors"
    assert load_checkpoint(latest_checkpoint(tmp_path)).step == 300


def test_an_edited_sidecar_is_refused(tmp_path):
    """The sidecar is covered by a hash: an edited step (which would resume at the wrong place),
    model name or metric is a named error, not a silent change."""
    model, opt = Net(), None
    opt = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "s", model, model_name="net", model_config={}, step=40, optimizer=opt)
    js = tmp_path / "s.json"
    text = js.read_text()
    assert load_checkpoint(path).step == 40
    for old, new in (('"step": 40', '"step": 4'), ('"model_name": "net"', '"model_name": "nut"')):
        assert old in text
        js.write_text(text.replace(old, new))
        with pytest.raises(CheckpointError, match=r"s\.json: the sidecar was edited or damaged"):
            load_checkpoint(path)
    js.write_text(text)
    js.chmod(0o000)
    try:
        if not os.access(js, os.R_OK):  # root reads anything
            with pytest.raises(CheckpointError, match=r"s\.json: cannot read the checkpoint sidecar"):
                load_checkpoint(path)
    finally:
        js.chmod(0o644)
    js.unlink()
    js.mkdir()
    with pytest.raises(CheckpointError, match=r"s\.json"):
        load_checkpoint(path)


def test_named_optimizer_states_round_trip(tmp_path):
    model = Net()
    opts = {"d": torch.optim.Adam(model.parameters(), lr=0.1), "g": torch.optim.SGD(model.parameters(), lr=0.2,
                                                                                   momentum=0.9)}
    model(torch.randn(2, 1, 5, 5)).sum().backward()
    for o in opts.values():
        o.step()
    path = save_checkpoint(tmp_path / "n", model, model_name="net", model_config={}, optimizer=opts)
    fresh = {"d": torch.optim.Adam(model.parameters(), lr=0.1), "g": torch.optim.SGD(model.parameters(), lr=0.2,
                                                                                    momentum=0.9)}
    restore_training_state(path, fresh, None)
    for name in opts:
        a, b = opts[name].state_dict()["state"], fresh[name].state_dict()["state"]
        assert a.keys() == b.keys()
        for k in a:
            for key, value in a[k].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[k][key]))
    with pytest.raises(CheckpointError, match="several named optimizer"):
        restore_training_state(path, torch.optim.Adam(model.parameters()), None)
    with pytest.raises(CheckpointError, match="no optimizer state for update 'e'"):
        restore_training_state(path, {"e": torch.optim.Adam(model.parameters())}, None)
