"""The scans of a training run: a SemanticKITTI folder, or synthetic scans from the simulated
64-beam sensor of :mod:`pixelwise.data.synthetic.lidar`, generated once into a folder (training
scans as sequence 00, validation scans as sequence 08, like the real split)."""

from __future__ import annotations

import json
from pathlib import Path

from ...atomic import write_text_atomic
from ...data.datasets.semantic_kitti import ScanRecord, find_scans
from ...data.synthetic.lidar import write_synthetic_sequences
from .config import LidarConfig

__all__ = ["SYNTHETIC_TRAIN_SEQUENCE", "SYNTHETIC_VAL_SEQUENCE", "dataset_records", "prepare_synthetic"]

SYNTHETIC_TRAIN_SEQUENCE, SYNTHETIC_VAL_SEQUENCE = "00", "08"


def prepare_synthetic(root: Path, train_scans: int, val_scans: int, seed: int = 0, *, log=print) -> Path:
    """Generate the synthetic dataset into ``root`` once (sequence 00 train, 08 validation).

    A ``synthetic.json`` manifest records what was generated; a folder made with other settings is
    an error rather than silently mixed data.
    """
    root = Path(root)
    manifest = {"train_scans": train_scans, "val_scans": val_scans, "seed": seed}
    path = root / "synthetic.json"
    if path.exists():
        found = json.loads(path.read_text())
        if found != manifest:
            raise ValueError(f"{root}: holds synthetic scans made with {found}, not {manifest}; "
                             f"choose another folder")
        return root
    log(f"generating {train_scans} + {val_scans} synthetic scans into {root}")
    write_synthetic_sequences(root, train_scans, seed=seed, sequence=SYNTHETIC_TRAIN_SEQUENCE)
    # A different seed stream: validation scenes never repeat a training scene.
    write_synthetic_sequences(root, val_scans, seed=seed + 7919, sequence=SYNTHETIC_VAL_SEQUENCE)
    write_text_atomic(path, json.dumps(manifest))
    return root


def dataset_records(cfg: LidarConfig, run_dir: Path, *, log=print) -> tuple[list[ScanRecord], list[ScanRecord]]:
    """(train records, validation records) for the config's data."""
    if cfg.data == "synthetic":
        root = prepare_synthetic(Path(run_dir) / "scans", cfg.synthetic_scans, cfg.synthetic_val_scans,
                                 cfg.synthetic_seed, log=log)
        train_seq, val_seq = [SYNTHETIC_TRAIN_SEQUENCE], [SYNTHETIC_VAL_SEQUENCE]
    else:
        root, train_seq, val_seq = Path(cfg.data), cfg.train_sequences, cfg.val_sequences
        if not root.exists():
            raise FileNotFoundError(f"data: {root} does not exist")
    train_records = find_scans(root, sequences=train_seq, require_labels=True)
    val_records = find_scans(root, sequences=val_seq, require_labels=True) if val_seq else []
    if cfg.val_scans:
        val_records = val_records[: cfg.val_scans]
    return train_records, val_records
