"""A tiny deterministic regression problem shared by the engine tests and their subprocess scripts.

The dataset draws jitter from the *global* torch RNG and the model may use dropout, so an exact
resume is only possible if every RNG stream and the data position are restored.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

DIM = 4


class ToyRegression(Dataset):
    def __init__(self, n: int = 40, seed: int = 0, jitter: float = 0.0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, DIM, generator=g)
        w = torch.tensor([1.0, -2.0, 3.0, 0.5])
        self.y = torch.tanh(self.x @ w) + 0.05 * torch.randn(n, generator=g)
        self.jitter = jitter
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        x = self.x[i]
        if self.jitter:
            x = x + self.jitter * torch.randn(DIM)
        return {"x": x, "y": self.y[i], "name": f"sample{i}"}


def make_model(seed: int = 0, dropout: float = 0.0, width: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(DIM, width), nn.Tanh(), nn.Dropout(dropout), nn.Linear(width, 1))


def loss_fn(model, batch):
    pred = model(batch["x"]).squeeze(-1)
    err = pred - batch["y"]
    return (err**2).mean(), {"mae": err.abs().mean().item()}


def make_validate(dataset: ToyRegression):
    """Validation that itself draws random numbers: it must not disturb the training streams."""

    def validate(model):
        noise = torch.rand(1).item() * 0  # consumes RNG, changes nothing
        pred = model(dataset.x).squeeze(-1)
        return {"val_mse": float(((pred - dataset.y) ** 2).mean()) + noise}

    return validate


def assert_same_weights(a, b) -> None:
    """Two safetensors files hold the same tensors, bit for bit (what an exact resume promises)."""
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
