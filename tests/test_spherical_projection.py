"""Spherical projection of point clouds to range images (pixelwise.data.transforms.spherical_projection)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.data.transforms.spherical_projection import (
    CHANNELS,
    EMPTY,
    SENSOR_MEANS,
    SENSOR_STDS,
    ProjectionConfig,
    RangeImage,
    normalize,
    project,
    project_labels,
    unproject,
)

SEQ = Path("/work/shared/data/semantic-kitti/sequences/00")
FRAMES = ("000000", "000001", "000002")
H, W = 64, 2048


@pytest.fixture(scope="module", params=FRAMES)
def real(request):
    """(points, labels, image) of one real scan; read with plain numpy, not the code under test."""
    scan = SEQ / "velodyne" / f"{request.param}.bin"
    if not scan.is_file():
        pytest.skip("SemanticKITTI sample absent")
    points = np.fromfile(scan, dtype="<f4").reshape(-1, 4)
    labels = (np.fromfile(SEQ / "labels" / f"{request.param}.label", dtype="<u4") & 0xFFFF).astype(np.int64)
    return points, labels, project(points)


def _pixel_minima(image: RangeImage):
    """Brute force per pixel: the minimum range and the lowest index among the points at it."""
    pixel = image.v * image.width + image.u
    min_range = np.full(image.height * image.width, np.inf, dtype=np.float32)
    np.minimum.at(min_range, pixel, image.point_range)
    is_min = image.point_range == min_range[pixel]
    min_index = np.full(image.height * image.width, np.iinfo(np.int64).max)
    np.minimum.at(min_index, pixel[is_min], np.flatnonzero(is_min))
    return min_range.reshape(image.height, image.width), min_index.reshape(image.height, image.width)


# --- real scans --------------------------------------------------------------------------


def test_real_shapes_and_pixels(real):
    points, _, img = real
    n = len(points)
    assert img.channels.shape == (5, H, W) and img.channels.dtype == np.float32
    assert img.mask.shape == (H, W) and img.mask.dtype == bool
    assert img.point_index.shape == (H, W) and img.point_index.dtype == np.int64
    assert img.u.shape == img.v.shape == img.point_range.shape == (n,)
    assert img.u.dtype == img.v.dtype == np.int64 and img.point_range.dtype == np.float32
    assert (img.height, img.width, img.num_points) == (H, W, n)
    assert (0 <= img.u).all() and (img.u < W).all() and (0 <= img.v).all() and (img.v < H).all()
    assert img.mask.sum() == len(np.unique(img.v * W + img.u))
    # Collisions happen: fewer pixels than points, but most of the image is filled.
    assert n > img.mask.sum() > 0.5 * H * W
    np.testing.assert_array_equal(img.mask, img.point_index >= 0)


def test_real_kept_point_values(real):
    points, _, img = real
    kept = img.point_index[img.mask]
    # Each kept point sits at its own (v, u) and the pixel holds exactly its values.
    np.testing.assert_array_equal(img.point_index[img.v[kept], img.u[kept]], kept)
    expected = np.concatenate([img.point_range[kept, None], points[kept]], axis=1).T
    np.testing.assert_array_equal(img.channels[:, img.mask], expected)
    np.testing.assert_array_equal(img.channels[:, img.v[kept], img.u[kept]], expected)
    assert (img.channels[:, ~img.mask] == EMPTY).all()
    np.testing.assert_allclose(img.point_range, np.linalg.norm(points[:, :3].astype(np.float64), axis=1), rtol=1e-6)
    assert (img.channels[0][img.mask] >= 0).all()


def test_real_keeps_closest_point(real):
    _, _, img = real
    min_range, min_index = _pixel_minima(img)
    np.testing.assert_array_equal(img.mask, np.isfinite(min_range))
    np.testing.assert_array_equal(img.channels[0][img.mask], min_range[img.mask])
    np.testing.assert_array_equal(img.point_index[img.mask], min_index[img.mask])


def test_real_columns_follow_yaw(real):
    points, _, img = real
    # Left of the sensor (y > 0, yaw in (0, pi)) is the left half; right (y < 0) the right half.
    left, right = points[:, 1] > 0, points[:, 1] < 0
    assert (img.u[left] <= W // 2).all() and (img.u[right] >= W // 2).all()
    ahead = (points[:, 0] > 0) & (np.abs(points[:, 1]) < 0.01 * points[:, 0])
    assert ahead.any() and (np.abs(img.u[ahead] - W // 2) <= 8).all()
    # Rows grow downwards: higher pitch, lower row (checked between far-apart pitches).
    pitch = np.degrees(np.arcsin(points[:, 2] / img.point_range))
    assert img.v[pitch > 1.0].max() < img.v[pitch < -20.0].min()


def test_real_labels_round_trip(real):
    _, labels, img = real
    per_pixel = project_labels(labels, img, fill=-7)
    assert per_pixel.shape == (H, W) and per_pixel.dtype == np.int64
    assert (per_pixel[~img.mask] == -7).all()
    back = unproject(per_pixel, img)
    won = img.point_index[img.v, img.u] == np.arange(img.num_points)
    assert won.sum() == img.mask.sum()
    np.testing.assert_array_equal(back[won], labels[won])
    # A point that lost its pixel reads the label of the point that won it.
    np.testing.assert_array_equal(back[~won], labels[img.point_index[img.v, img.u][~won]])


def test_real_determinism_and_permutation(real):
    points, _, img = real
    again = project(points)
    for name in ("channels", "mask", "point_index", "u", "v", "point_range"):
        np.testing.assert_array_equal(getattr(again, name), getattr(img, name))
    perm = np.random.default_rng(1).permutation(len(points))
    shuffled = project(points[perm])
    np.testing.assert_array_equal(shuffled.mask, img.mask)
    np.testing.assert_array_equal(shuffled.channels[0], img.channels[0])
    # Pixels whose two closest points are equally far may keep the other one; elsewhere the
    # kept coordinates are the same whatever the input order.
    pixel = img.v * W + img.u
    at_min = img.point_range == img.channels[0].reshape(-1)[pixel]
    tied = np.bincount(pixel[at_min], minlength=H * W).reshape(H, W) > 1
    assert tied.sum() <= 5
    same = img.mask & ~tied
    np.testing.assert_array_equal(shuffled.channels[:, same], img.channels[:, same])
    np.testing.assert_array_equal(perm[shuffled.point_index[same]], img.point_index[same])


def test_real_normalize(real):
    _, _, img = real
    x = normalize(img.channels, img.mask)
    assert x.shape == (5, H, W) and x.dtype == np.float32
    assert (x[:, ~img.mask] == 0).all()
    mean, std = np.array(SENSOR_MEANS)[:, None], np.array(SENSOR_STDS)[:, None]
    np.testing.assert_allclose(x[:, img.mask], (img.channels[:, img.mask] - mean) / std, rtol=1e-5, atol=1e-6)
    # The dataset-wide statistics fit a single scan loosely: standardised channels are O(1)
    # (x averages about -1 m in these scans, against +10.9 m over the dataset).
    assert np.abs(x[:, img.mask].mean(axis=1)).max() < 1.5
    assert 0.5 < x[:, img.mask].std(axis=1).min() and x[:, img.mask].std(axis=1).max() < 2.0


# --- hand-computed cases -----------------------------------------------------------------

# Row of pitch 0: (1 - 25/28) * 64 = 6.86 -> 6.
ROW0 = int(np.floor(H * 3.0 / 28.0))


def test_point_straight_ahead():
    img = project(np.array([[10.0, 0.0, 0.0, 0.25]]))
    assert (img.u[0], img.v[0], ROW0) == (W // 2, 6, 6)
    assert img.channels[:, 6, W // 2].tolist() == [10.0, 10.0, 0.0, 0.0, 0.25]
    assert img.mask.sum() == 1 and img.point_index[6, W // 2] == 0


def test_points_behind_and_out_of_fov():
    pts = np.array(
        [
            [-10.0, 0.0, 0.0],  # yaw = +pi: u = 0
            [-10.0, -0.0, 0.0],  # yaw = -pi: u = W, clipped to W - 1
            [0.0, 10.0, 0.0],  # yaw = pi/2: u = W/4
            [0.0, -10.0, 0.0],  # yaw = -pi/2: u = 3W/4
            [10.0, 0.0, 5.0],  # pitch 26.6 deg > fov_up: row 0
            [10.0, 0.0, -10.0],  # pitch -45 deg < fov_down: row H - 1
            [10.0, 0.0, np.tan(np.radians(-24.9)) * 10.0],  # just inside fov_down
        ]
    )
    img = project(pts)
    assert img.u.tolist() == [0, W - 1, W // 4, 3 * W // 4, W // 2, W // 2, W // 2]
    assert img.v.tolist() == [ROW0] * 4 + [0, H - 1, H - 1]
    assert img.channels[4].max() == 0  # (N, 3) input: remission 0


def test_point_at_origin_has_no_nan():
    img = project(np.zeros((1, 4)))
    assert (img.u[0], img.v[0]) == (W // 2, ROW0)
    assert np.isfinite(img.channels).all() and img.channels[0, ROW0, W // 2] == 0


def test_collisions_keep_closest_then_lowest_index():
    far, near, other = [10.0, 0.0, 0.0, 1.0], [5.0, 0.0, 0.0, 2.0], [5.0, 0.0, 0.0, 3.0]
    for pts, winner in [([far, near], 1), ([near, far], 0), ([far, near, other], 1), ([other, near, far], 0)]:
        img = project(np.array(pts))
        assert img.mask.sum() == 1
        assert img.point_index[ROW0, W // 2] == winner
        assert img.channels[4, ROW0, W // 2] == pts[winner][3]


def test_custom_config():
    cfg = ProjectionConfig(height=20, width=8, fov_up=10.0, fov_down=-10.0)
    z = 10.0 * np.tan(np.radians([9.5, 0.0, -0.5, -9.5]))
    img = project(np.stack([np.full(4, 10.0), np.zeros(4), z], axis=1), cfg)
    # v = floor((1 - (pitch + 10) / 20) * 20)
    assert img.v.tolist() == [0, 10, 10, 19]
    assert img.channels.shape == (5, 20, 8) and (img.height, img.width) == (20, 8)


def test_empty_cloud():
    for shape in [(0, 4), (0, 3)]:
        img = project(np.zeros(shape, dtype=np.float32))
        assert img.num_points == 0 and img.u.shape == (0,) and not img.mask.any()
        assert (img.channels == EMPTY).all() and (img.point_index == -1).all()
        assert project_labels(np.zeros(0, dtype=np.int64), img).shape == (H, W)
        assert unproject(np.zeros((3, H, W)), img).shape == (3, 0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="points"):
        project(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="points"):
        project(np.zeros(4))
    with pytest.raises(TypeError, match="points"):
        project([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="points.*finite"):
        project(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(TypeError, match="config"):
        project(np.zeros((1, 3)), (64, 2048))
    for kwargs, name in [
        ({"height": 0}, "height"),
        ({"width": 2.5}, "width"),
        ({"height": True}, "height"),
        ({"fov_up": -30.0}, "fov_up"),
        ({"fov_down": float("nan")}, "fov_down"),
    ]:
        with pytest.raises(ValueError, match=name):
            ProjectionConfig(**kwargs)


def test_labels_and_unproject_errors_and_torch():
    pts = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [5.0, 0.0, 0.0]])
    cfg = ProjectionConfig(4, 8)
    img = project(pts, cfg)
    with pytest.raises(ValueError, match="labels"):
        project_labels(np.zeros(2, dtype=np.int64), img)
    with pytest.raises(TypeError, match="labels"):
        project_labels(np.zeros(3), img)
    with pytest.raises(ValueError, match="values"):
        unproject(np.zeros((8, 4)), img)
    with pytest.raises(TypeError, match="values"):
        unproject([[0] * 8] * 4, img)
    logits = np.random.default_rng(0).normal(size=(2, 3, 4, 8)).astype(np.float32)
    out = unproject(torch.from_numpy(logits), img)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), unproject(logits, img))
    np.testing.assert_array_equal(out.numpy()[..., 0], logits[..., img.v[0], img.u[0]])


def test_normalize_hand_and_errors():
    channels = np.full((5, 2, 3), EMPTY, dtype=np.float32)
    mask = np.zeros((2, 3), dtype=bool)
    channels[:, 1, 2] = [12.12 + 12.32, 10.88, 0.23, -1.04 - 0.86, 0.21]
    mask[1, 2] = True
    x = normalize(channels, mask)
    np.testing.assert_allclose(x[:, 1, 2], [1.0, 0.0, 0.0, -1.0, 0.0], atol=1e-6)
    assert (x[:, ~mask] == 0).all()
    assert len(CHANNELS) == len(SENSOR_MEANS) == len(SENSOR_STDS) == 5
    with pytest.raises(ValueError, match="mask"):
        normalize(channels, mask.astype(np.uint8))
    with pytest.raises(ValueError, match="channels"):
        normalize(channels[0], mask)
    with pytest.raises(ValueError, match="means"):
        normalize(channels[:3], mask)
    with pytest.raises(ValueError, match="stds"):
        normalize(channels, mask, stds=(1.0, 1.0, 0.0, 1.0, 1.0))
