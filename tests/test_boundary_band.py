"""The trimap band around label boundaries (pixelwise.metrics.segmentation.boundary_band)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixelwise.metrics import segmentation
from pixelwise.metrics.segmentation import boundary_band

IGNORE = 255


def _oracle(label: np.ndarray, width: int, ignore_index: int | None) -> np.ndarray:
    """The definition, pixel by pixel: boundary pixels by their 4-neighbours, then every valid
    pixel within Euclidean distance ``width`` of one."""
    h, w = label.shape

    def valid(y, x):
        return ignore_index is None or label[y, x] != ignore_index

    boundary = []
    for y in range(h):
        for x in range(w):
            if not valid(y, x):
                continue
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and valid(ny, nx) and label[ny, nx] != label[y, x]:
                    boundary.append((y, x))
                    break
    band = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if valid(y, x):
                band[y, x] = any(math.hypot(y - by, x - bx) <= width for by, bx in boundary)
    return band


def test_hand_computed_example():
    # a vertical boundary between 1 and 2 at columns 2|3, a void (255) stripe below the 1s,
    # and a 3 that only touches void: no boundary around it
    label = np.array([
        [1, 1, 1, 2, 2, 2],
        [1, 1, 1, 2, 2, 2],
        [255, 255, 255, 2, 2, 2],
        [3, 3, 255, 2, 2, 2],
    ])
    expected0 = np.array([
        [0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ], bool)
    np.testing.assert_array_equal(boundary_band(label, 0), expected0)
    expected1 = np.array([
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 0, 0, 1, 0, 0],  # (2, 2) is void: never in the band; (2, 4) is sqrt(2) away
        [0, 0, 0, 0, 0, 0],
    ], bool)
    np.testing.assert_array_equal(boundary_band(label, 1), expected1)
    # width 2: (2, 4) at sqrt(2), (3, 3) and (0, 5) at 2 are in, (3, 4) at sqrt(5) is not
    band2 = boundary_band(label, 2)
    assert band2[2, 4] and band2[3, 3] and band2[0, 5] and not band2[3, 4]
    assert not band2[3, :2].any()  # the 3s touch only void
    # without an ignore label, 255 is an ordinary class with boundaries of its own
    assert boundary_band(label, 0, ignore_index=None)[3, 1]


@pytest.mark.parametrize("width", [0, 1, 2, 3])
@pytest.mark.parametrize("ignore_index", [IGNORE, None])
def test_matches_the_brute_force_oracle(width, ignore_index):
    rng = np.random.default_rng(width)
    for _ in range(3):
        # blocky random labels (so there are interiors) with random void pixels
        label = np.kron(rng.integers(0, 3, size=(4, 5)), np.ones((3, 3), np.int64))
        label[rng.random(label.shape) < 0.1] = IGNORE
        np.testing.assert_array_equal(boundary_band(label, width, ignore_index), _oracle(label, width, ignore_index))


def test_torch_batches_and_kinds():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=(3, 9, 11))
    labels[1] = 2  # no boundary at all
    labels[2, :, 4:] = IGNORE
    batch = boundary_band(torch.from_numpy(labels), 2)
    assert isinstance(batch, torch.Tensor) and batch.dtype == torch.bool and batch.shape == (3, 9, 11)
    for b in range(3):
        np.testing.assert_array_equal(batch[b].numpy(), boundary_band(labels[b], 2))
        np.testing.assert_array_equal(batch[b].numpy(), _oracle(labels[b], 2, IGNORE))
    assert not batch[1].any()
    single = boundary_band(torch.from_numpy(labels[0].astype(np.uint8)), 1)
    assert single.shape == (9, 11) and single.dtype == torch.bool
    out = boundary_band(labels[0].astype(np.int32), 1)
    assert isinstance(out, np.ndarray) and out.dtype == bool
    np.testing.assert_array_equal(out, single.numpy())


def test_wide_band_covers_every_valid_pixel():
    label = np.zeros((8, 8), np.int64)
    label[:, 4:] = 1
    label[0, 0] = IGNORE
    band = boundary_band(label, 8)
    assert band.sum() == label.size - 1 and not band[0, 0]


def test_errors():
    label = np.zeros((4, 4), np.int64)
    with pytest.raises(ValueError, match="width must be >= 0, got -1"):
        boundary_band(label, -1)
    with pytest.raises(TypeError, match="width must be an int"):
        boundary_band(label, 1.5)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        boundary_band(label, 1, ignore_index=1.0)
    with pytest.raises(ValueError, match="label"):
        boundary_band(np.zeros((4, 4), np.float32), 1)
    with pytest.raises(ValueError, match="label"):
        boundary_band(np.zeros((1, 2, 4, 4), np.int64), 1)
    with pytest.raises(TypeError, match="label"):
        boundary_band([[0, 1]], 1)


def test_exported():
    assert "boundary_band" in segmentation.__all__
