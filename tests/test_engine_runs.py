"""The engine's run guarantees beyond the single-optimizer loop: alternating multi-optimizer steps
(a toy GAN) and staged runs resume bitwise after SIGTERM; a second signal during a checkpoint
write does not corrupt it; one run per folder (a lock naming the owner; stale locks taken over);
named errors for devices and non-finite losses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pixelwise.engine import (
    DeviceError,
    NonFiniteLossError,
    OptimizerConfig,
    RunLockedError,
    ScheduleConfig,
    Stage,
    TrainConfig,
    Update,
    alternating_step,
    latest_checkpoint,
    load_checkpoint,
    run_lock,
    train,
    train_stages,
)
from pixelwise.engine import trainer as trainer_mod

SCRIPTS = Path(__file__).parent / "engine_scripts"
sys.path.insert(0, str(SCRIPTS))
import engine_toy as toy  # noqa: E402


def cfg(**kw) -> TrainConfig:
    base = dict(steps=12, batch_size=4, log_every=2, ckpt_every=3, seed=5, device="cpu",
                optimizer=OptimizerConfig(name="adam", lr=1e-2))
    base.update(kw)
    return TrainConfig(**base)


class SigtermAt:
    """A loss wrapper that sends this process SIGTERM on its ``at``-th call, like a scheduler would."""

    def __init__(self, loss, at: int | None):
        self.loss, self.at, self.calls = loss, at, 0

    def __call__(self, model, batch):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.loss(model, batch)


# --------------------------------------------------------------------------- a toy GAN


class ToyGAN(nn.Module):
    """Generator maps noise to 4-d samples; discriminator scores them (dropout: RNG in both)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(11)
        self.generator = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, toy.DIM))
        self.discriminator = nn.Sequential(nn.Linear(toy.DIM, 16), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(16, 1))


def d_loss(model, batch):
    real = batch["x"]
    fake = model.generator(torch.randn(real.shape[0], 3)).detach()
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = bce(model.discriminator(real), torch.ones(len(real), 1)) + bce(model.discriminator(fake), torch.zeros(len(real), 1))
    return loss, {"d_real": model.discriminator(real).mean().item()}


def g_loss(model, batch):
    fake = model.generator(torch.randn(batch["x"].shape[0], 3))
    return nn.functional.binary_cross_entropy_with_logits(model.discriminator(fake), torch.ones(len(fake), 1)), {}


def gan_run(run_dir: Path, *, sigterm_at: int | None = None, resume: bool = False):
    model = ToyGAN()
    step = alternating_step(
        Update("discriminator", SigtermAt(d_loss, sigterm_at), parameters=lambda m: m.discriminator.parameters(),
               optimizer=OptimizerConfig(name="adam", lr=2e-3, betas=[0.5, 0.999])),
        Update("generator", g_loss, parameters=lambda m: m.generator.parameters(),
               optimizer=OptimizerConfig(name="sgd", lr=5e-2, momentum=0.9),
               schedule=ScheduleConfig(milestones=[6], gamma=0.5), every=2),
    )
    data = toy.ToyRegression(n=24, jitter=0.1)
    return train(model, data, step, cfg(), run_dir, model_name="toy_gan", model_config={}, resume=resume,
                 log=lambda m: None)


def test_alternating_two_optimizer_gan_resumes_bitwise_after_sigterm(tmp_path):
    ref = gan_run(tmp_path / "ref")
    assert not ref.interrupted and ref.step == 12
    cut = gan_run(tmp_path / "cut", sigterm_at=5)
    assert cut.interrupted and cut.signal == "SIGTERM" and cut.step == 5
    meta = load_checkpoint(cut.checkpoint).meta
    assert set(meta["optimizer"]["__named__"]) == {"discriminator", "generator"}
    done = gan_run(tmp_path / "cut", resume=True)
    assert done.step == 12 and not done.interrupted
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", tmp_path / "cut" / "model.safetensors")
    # the generator's schedule halved its rate at step 6 in both runs, and it only moved every 2nd step
    log = [line for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    assert log and all("discriminator_loss" in line for line in log)


def test_every_update_must_move_something():
    with pytest.raises(ValueError, match="update names must be unique"):
        alternating_step(Update("a", g_loss), Update("a", d_loss))
    with pytest.raises(ValueError, match="Update.every must be a positive int"):
        Update("a", g_loss, every=0)


# --------------------------------------------------------------------------- staged runs


def stages_for(sigterm_at: int | None = None) -> list[Stage]:
    return [
        Stage("head", cfg(steps=6), toy.loss_fn, frozen=("0",)),  # first layer frozen
        Stage("all", cfg(steps=9, optimizer=OptimizerConfig(name="sgd", lr=5e-2, momentum=0.9)),
              SigtermAt(toy.loss_fn, sigterm_at)),
    ]


def staged_run(run_dir: Path, stages, *, resume: bool = False):
    model = toy.make_model(seed=2, dropout=0.2)
    first = model[0].weight.detach().clone()
    data = toy.ToyRegression(n=24, jitter=0.1)
    result = train_stages(model, data, stages, run_dir, model_name="toy", model_config={}, resume=resume,
                          log=lambda m: None)
    return model, first, result


def test_staged_run_resumes_inside_its_second_stage_bitwise(tmp_path):
    ref_model, _, _ = staged_run(tmp_path / "ref", stages_for())
    head = load_file(str(tmp_path / "ref" / "head" / "model.safetensors"))
    start = toy.make_model(seed=2, dropout=0.2)
    assert torch.equal(head["model.0.weight"], start[0].weight)  # frozen in stage 1
    assert not torch.equal(head["model.3.weight"], start[3].weight)
    assert all(p.requires_grad for p in ref_model.parameters())  # unfrozen again afterwards

    _, _, cut = staged_run(tmp_path / "cut", stages_for(sigterm_at=4))
    assert cut.interrupted and cut.signal == "SIGTERM" and cut.step == 4
    assert (tmp_path / "cut" / "head" / "model.json").exists()
    assert latest_checkpoint(tmp_path / "cut" / "all").name == "step-0000004.safetensors"
    _, _, done = staged_run(tmp_path / "cut", stages_for(), resume=True)
    assert done.step == 9 and not done.interrupted
    toy.assert_same_weights(tmp_path / "ref" / "all" / "model.safetensors",
                            tmp_path / "cut" / "all" / "model.safetensors")


# --------------------------------------------------------------------------- signals during a save


def test_a_second_signal_during_the_checkpoint_write_waits_for_it(tmp_path, monkeypatch, capsys):
    original = trainer_mod.save_checkpoint
    sent = []

    def save_under_fire(*args, **kwargs):
        if not sent:  # the first save is the interrupt checkpoint: signal again in the middle of it
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "save_checkpoint", save_under_fire)
    data = toy.ToyRegression(n=24)
    model = toy.make_model(seed=1)
    res = train(model, data, SigtermAt(toy.loss_fn, 2), cfg(ckpt_every=0), tmp_path / "r", model_name="toy",
                model_config={}, log=lambda m: None)
    assert res.interrupted and res.step == 2 and sent
    assert "finishing the save first" in capsys.readouterr().err
    assert load_checkpoint(res.checkpoint).step == 2  # complete and intact
    monkeypatch.setattr(trainer_mod, "save_checkpoint", original)
    done = train(toy.make_model(seed=1), data, toy.loss_fn, cfg(ckpt_every=0), tmp_path / "r", model_name="toy",
                 model_config={}, resume=True, log=lambda m: None)
    ref = train(toy.make_model(seed=1), data, toy.loss_fn, cfg(ckpt_every=0), tmp_path / "ref", model_name="toy",
                model_config={}, log=lambda m: None)
    assert done.step == ref.step == 12
    toy.assert_same_weights(tmp_path / "ref" / "model.safetensors", tmp_path / "r" / "model.safetensors")


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "log.jsonl").write_text('{"step": 1, "split": "train", "loss": 1.0}\n')
    res = train(toy.make_model(), toy.ToyRegression(n=24), toy.loss_fn, cfg(steps=2), run_dir, model_name="toy",
                model_config={}, resume=True, log=lambda m: None)
    assert res.step == 2 and (run_dir / "model.json").exists()


# --------------------------------------------------------------------------- one run per folder

HOLDER = """
import sys, time
from pixelwise.engine import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_a_locked_folder_names_the_folder_and_the_owner(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError) as err:
            train(toy.make_model(), toy.ToyRegression(n=24), toy.loss_fn, cfg(steps=2), run_dir, model_name="toy",
                  model_config={}, log=lambda m: None)
        assert str(run_dir) in str(err.value) and f"process {proc.pid}" in str(err.value)
        assert not (run_dir / "log.jsonl").exists() and not (run_dir / "config.yaml").exists()  # nothing mixed in
        proc.kill()  # a dead owner: its lock is stale and taken over
        proc.wait()
        notes = []
        res = train(toy.make_model(), toy.ToyRegression(n=24), toy.loss_fn, cfg(steps=2), run_dir, model_name="toy",
                    model_config={}, log=notes.append)
        assert res.step == 2
        assert any("took over the lock" in n and f"process {proc.pid}" in n for n in notes)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with run_lock(tmp_path / "r"), run_lock(tmp_path / "r"):
        pass
    with run_lock(tmp_path / "r"):
        pass


# --------------------------------------------------------------------------- named errors


def test_cuda_without_cuda_and_unknown_devices_are_named(tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="device 'cuda': CUDA is not available on this machine"):
            train(toy.make_model(), toy.ToyRegression(n=24), toy.loss_fn, cfg(device="cuda"), tmp_path / "c",
                  model_name="toy", model_config={}, log=lambda m: None)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="gpu")


def test_a_non_finite_loss_gives_the_step_and_the_resume_flag(tmp_path):
    def nan_at_5(model, batch, calls=[0]):
        calls[0] += 1
        loss, logs = toy.loss_fn(model, batch)
        return (loss * float("nan") if calls[0] == 5 else loss), logs

    with pytest.raises(NonFiniteLossError, match=r"the loss is nan at step 5 .*last checkpoint \(step 3\) with --resume"):
        train(toy.make_model(), toy.ToyRegression(n=24), nan_at_5, cfg(), tmp_path / "n", model_name="toy",
              model_config={}, log=lambda m: None)
