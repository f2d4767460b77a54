"""Weights trained with the project's own recipes, shipped with the package.

Each entry is ``<name>.safetensors`` (the model's state dict) beside ``<name>.json``, its card:
``model`` (registered model name), ``model_config``, ``task``, ``config`` (the task config it was
trained with), ``recipe`` (the command that reproduces it), ``data``, ``steps``, ``metrics``
(held-out) and ``sha256`` of the weights file. Loading checks the hash and never unpickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

__all__ = ["ZOO_DIR", "ZooEntry", "ZooError", "list_zoo", "read_card", "read_weights"]

ZOO_DIR = Path(__file__).resolve().parent
CARD_KEYS = ("model", "model_config", "task", "recipe", "data", "steps", "metrics", "sha256")


class ZooError(ValueError):
    """No such zoo entry, or a damaged one; the message names it."""


@dataclass(frozen=True)
class ZooEntry:
    name: str
    card: dict
    weights: Path


def list_zoo() -> list[str]:
    """Names of the shipped entries (a card with its weights file beside it)."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json") if p.with_suffix(".safetensors").is_file())


def read_card(name: str) -> ZooEntry:
    card_file = ZOO_DIR / f"{name}.json"
    weights = card_file.with_suffix(".safetensors")
    if not card_file.is_file() or not weights.is_file():
        shipped = ", ".join(list_zoo()) or "none yet"
        raise ZooError(f"no weights named {name!r} are shipped in pixelwise/zoo (shipped: {shipped})")
    try:
        card = json.loads(card_file.read_text())
    except (OSError, ValueError) as exc:
        raise ZooError(f"{card_file}: unreadable zoo card ({exc})") from None
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ZooError(f"{card_file}: zoo card lacks {', '.join(missing)}")
    return ZooEntry(name, card, weights)


def read_weights(entry: ZooEntry) -> dict[str, torch.Tensor]:
    data = entry.weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.card["sha256"]:
        raise ZooError(f"{entry.weights}: contents do not match the SHA-256 of its card (damaged install?)")
    return load_safetensors(data)
