"""The dense CRF's grid search on validation images and the parameter file a run keeps
(``dense_crf.json``)."""

import pytest
import torch
import torch.nn.functional as F

from pixelwise.nn.dense_crf import DenseCRFParams
from pixelwise.tasks.segment.dense_search import (DENSE_FILE, grid_search_dense_crf, read_dense_params,
                                                  write_dense_params)

COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.2, 0.8, 0.2]])


def scene(seed, height=20, width=24, labels=4, noise=1.0):
    """Three flat colour regions (light pixel noise) and unaries = one-hot + Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.zeros(height, width, dtype=torch.long)
    gt[:, width // 2:] = 1
    gt[height // 2:, : width // 3] = 2
    image = (COLOURS[gt].permute(2, 0, 1) + 0.02 * torch.randn(3, height, width, generator=g)).clamp(0, 1)
    unary = F.one_hot(gt, labels).permute(2, 0, 1).float() + noise * torch.randn(labels, height, width, generator=g)
    return unary[None], image[None], gt


def test_grid_search_picks_the_better_setting():
    items = [scene(seed, height=h, width=w, labels=3) for seed, (h, w) in enumerate([(20, 24), (18, 30)])]
    unaries = [u[0] for u, _, _ in items]
    images = [im[0] for _, im, _ in items]
    labels = [gt.clone() for _, _, gt in items]
    labels[0][:2] = 255  # ignored rows
    best, table = grid_search_dense_crf(unaries, images, labels, {"steps": [0, 5], "appearance_weight": [4.0]})
    assert best.steps == 5 and best.appearance_weight == 4.0
    assert [row["steps"] for row in table] == [5, 0]
    assert table[0]["miou"] > table[1]["miou"] + 0.1
    assert set(table[0]) == {"steps", "appearance_weight", "appearance_xy", "appearance_rgb", "smoothness_weight",
                             "smoothness_xy", "miou", "accuracy", "score"}
    with pytest.raises(ValueError, match="unknown key 'theta'"):
        grid_search_dense_crf(unaries, images, labels, {"theta": [1.0]})
    with pytest.raises(ValueError, match="ignore_index"):
        grid_search_dense_crf(unaries, images, [torch.full_like(lab, 255) for lab in labels], {"steps": [1]})


def test_parameter_file_round_trip_and_defaults_without_one(tmp_path):
    params = DenseCRFParams(steps=3, appearance_weight=10.0)
    path = write_dense_params(tmp_path, params, [{"miou": 0.5}])
    assert path == tmp_path / DENSE_FILE and read_dense_params(tmp_path) == params
    said = []
    assert read_dense_params(tmp_path / "other", said.append) == DenseCRFParams() and "warning" in said[0]
    assert read_dense_params(None, said.append) == DenseCRFParams() and len(said) == 2
    path.write_text('{"params": {"theta": 1}}')
    with pytest.raises(ValueError, match="not a dense CRF parameter file"):
        read_dense_params(tmp_path)
