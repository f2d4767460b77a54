"""Synthetic HDL-64E scans of a procedural street (pixelwise.data.synthetic.lidar)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pixelwise.data.synthetic.lidar import (
    HDL64_AZIMUTH_OFFSETS_DEG,
    HDL64_ELEVATIONS_DEG,
    SYNTHETIC_CLASSES,
    LidarSensor,
    frame_seed,
    generate_scan,
    write_synthetic_sequences,
)

ROAD, SIDEWALK, TERRAIN, BUILDING, FENCE = 40, 48, 72, 50, 51
VEGETATION, TRUNK, POLE, CAR, PERSON = 70, 71, 80, 10, 30

SMALL = LidarSensor(azimuth_steps=512)
EXACT = LidarSensor(azimuth_steps=512, range_noise=0.0)  # noise-free geometry


@pytest.fixture(scope="module")
def full_scans():
    """Four full-resolution scans (seeds 0..3) and the time each took."""
    out = []
    for seed in range(4):
        t0 = time.perf_counter()
        pts, lab = generate_scan(seed)
        out.append((pts, lab, time.perf_counter() - t0))
    return out


def _elevation_deg(points):
    r = np.linalg.norm(points[:, :3].astype(np.float64), axis=1)
    return np.degrees(np.arcsin(points[:, 2] / r)), r


# ---------------------------------------------------------------------------------------------
# sensor model


def test_hdl64_beams_are_non_uniform_and_descending():
    e = np.asarray(HDL64_ELEVATIONS_DEG)
    assert e.shape == (64,)
    assert np.all(np.diff(e) < 0)
    assert 1.8 < e[0] < 2.2 and -24.5 < e[-1] < -24.1
    upper, lower = -np.diff(e[:32]), -np.diff(e[32:])
    assert 0.25 < upper.mean() < 0.4 and 0.45 < lower.mean() < 0.55
    assert upper.mean() < lower.mean()
    # the two blocks meet with a gap of about 1/2 degree (-8.33 -> -8.83)
    assert 0.35 < e[31] - e[32] < 0.65
    assert np.asarray(HDL64_AZIMUTH_OFFSETS_DEG).shape == (64,)
    assert np.abs(HDL64_AZIMUTH_OFFSETS_DEG).max() < 0.5
    sensor = LidarSensor()
    assert sensor.elevations_deg == tuple(float(x) for x in e)
    assert sensor.azimuth_steps == 2048 and sensor.mount_height == 1.73
    assert sensor.max_range == 80.0 and sensor.range_noise == 0.02
    assert 0.0 < sensor.min_range < 5.0 and 0.0 <= sensor.dropout < 0.2


def test_scan_shapes_dtypes_and_value_ranges():
    pts, lab = generate_scan(1, SMALL)
    assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 4
    assert lab.dtype == np.uint32 and lab.shape == (len(pts),)
    assert len(pts) > 0.5 * 64 * 512
    assert np.isfinite(pts).all()
    assert pts[:, 3].min() >= 0.0 and pts[:, 3].max() <= 1.0
    assert set(np.unique(lab).tolist()) <= set(SYNTHETIC_CLASSES)
    assert 0 not in SYNTHETIC_CLASSES
    r = np.linalg.norm(pts[:, :3].astype(np.float64), axis=1)
    assert r.min() >= SMALL.min_range - 1e-4 and r.max() <= SMALL.max_range + 1e-4
    # far ground is sampled up to the maximum range, as on a real scan
    assert r.max() > 0.8 * SMALL.max_range


def test_deterministic_and_seed_dependent():
    a_pts, a_lab = generate_scan(7, SMALL)
    b_pts, b_lab = generate_scan(7, SMALL)
    assert a_pts.tobytes() == b_pts.tobytes() and a_lab.tobytes() == b_lab.tobytes()
    c_pts, c_lab = generate_scan(8, SMALL)
    assert c_pts.shape != a_pts.shape or not np.array_equal(c_pts, a_pts)
    hist_a = np.bincount(a_lab, minlength=100) / len(a_lab)
    hist_c = np.bincount(c_lab, minlength=100) / len(c_lab)
    assert np.abs(hist_a - hist_c).sum() > 0.02  # a different street


def test_every_point_lies_on_a_beam():
    sensor = LidarSensor(azimuth_steps=512)
    pts, _ = generate_scan(2, sensor)
    el, _ = _elevation_deg(pts)
    beams = np.asarray(sensor.elevations_deg)
    gap = np.abs(el[:, None] - beams[None, :])
    assert gap.min(axis=1).max() < 0.01  # well inside the required 0.5 deg
    row = gap.argmin(axis=1)
    counts = np.bincount(row, minlength=64)
    assert (counts > 0).all()  # every laser returns something
    assert counts.max() <= sensor.azimuth_steps
    # azimuths sit on the firing grid: yaw - laser offset is the same phase modulo one step
    step = 2 * np.pi / sensor.azimuth_steps
    yaw = np.arctan2(pts[:, 1], pts[:, 0]).astype(np.float64)
    yaw -= np.radians(np.asarray(sensor.azimuth_offsets_deg))[row]
    phase = np.angle(np.exp(1j * 2 * np.pi * yaw / step))  # circular residual, radians of a step
    spread = np.abs(np.angle(np.exp(1j * (phase - phase[0]))))
    assert spread.max() < 0.05 * 2 * np.pi
    # at most one point per (laser, firing)
    col = np.round((yaw - phase[0] / (2 * np.pi) * step) / step).astype(np.int64)
    col %= sensor.azimuth_steps
    assert len(np.unique(row * sensor.azimuth_steps + col)) == len(pts)
    # points are ordered by laser, top to bottom
    assert np.all(np.diff(row) >= 0)


def test_custom_sensor_is_honoured():
    beams = tuple(np.linspace(5.0, -20.0, 16))
    sensor = LidarSensor(elevations_deg=beams, azimuth_steps=256, mount_height=2.0,
                         min_range=1.0, max_range=40.0, range_noise=0.0)  # fmt: skip
    assert sensor.azimuth_offsets_deg == (0.0,) * 16
    pts, lab = generate_scan(3, sensor)
    el, r = _elevation_deg(pts)
    assert np.abs(el[:, None] - np.asarray(beams)[None]).min(axis=1).max() < 0.01
    assert r.max() <= 40.0 + 1e-4 and r.min() >= 1.0 - 1e-4
    assert np.abs(pts[lab == ROAD, 2] + 2.0).max() < 1e-3
    assert len(pts) <= 16 * 256


def test_dropout_and_noise_parameters_act():
    clean = LidarSensor(azimuth_steps=512, dropout=0.0, range_noise=0.0)
    lossy = LidarSensor(azimuth_steps=512, dropout=0.3, range_noise=0.0)
    n_clean = len(generate_scan(4, clean)[0])
    n_lossy = len(generate_scan(4, lossy)[0])
    assert n_lossy < 0.85 * n_clean
    noisy = LidarSensor(azimuth_steps=512, dropout=0.0, range_noise=0.05)
    pts, lab = generate_scan(4, noisy)
    z = pts[lab == ROAD, 2] + noisy.mount_height
    el = np.radians(np.abs(_elevation_deg(pts[lab == ROAD])[0]))
    # z error of road points is the range noise projected on the vertical
    assert 0.5 < np.std(z / np.sin(el)) / 0.05 < 1.5


# ---------------------------------------------------------------------------------------------
# geometry


def test_ground_geometry():
    pts, lab = generate_scan(5, EXACT)
    h = EXACT.mount_height
    road = pts[lab == ROAD]
    assert len(road) > 1000
    assert np.abs(road[:, 2] + h).max() < 1e-3
    walk = pts[lab == SIDEWALK, 2] + h
    assert len(walk) > 500
    # the sidewalk top is a curb height (0.10-0.16 m) above the road; curb faces lie in between
    assert walk.min() > -1e-3 and walk.max() < 0.17
    assert np.mean((walk > 0.095) & (walk < 0.165)) > 0.9
    # with noise the road is still within a few sigma of the plane
    pts_n, lab_n = generate_scan(5, SMALL)
    assert np.abs(pts_n[lab_n == ROAD, 2] + h).max() < 5 * SMALL.range_noise + 1e-3
    # objects stand on the ground and nothing is far below it
    assert pts_n[:, 2].min() > -h - 0.3
    car_z = pts_n[lab_n == CAR, 2] + h
    if len(car_z):
        assert car_z.min() > 0.1 and car_z.max() < 2.4
    person_z = pts_n[lab_n == PERSON, 2] + h
    if len(person_z):
        assert person_z.min() > -0.1 and person_z.max() < 2.1


@pytest.mark.parametrize("label,max_radius", [(POLE, 0.2), (TRUNK, 0.35)])
def test_poles_and_trunks_are_thin_vertical_structures(label, max_radius):
    sensor = LidarSensor(range_noise=0.0)  # full resolution: thin objects need it
    heights = []
    for seed in (0, 1):
        pts, lab = generate_scan(seed, sensor)
        obj = pts[lab == label].astype(np.float64)
        pairs = cKDTree(obj[:, :2]).query_pairs(0.5, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (len(obj),) * 2)
        n, comp = connected_components(graph, directed=False)
        for k in range(n):
            p = obj[comp == k]
            if len(p) < 15:
                continue
            centre = p[:, :2].mean(axis=0)
            assert np.linalg.norm(p[:, :2] - centre, axis=1).max() < max_radius
            heights.append(np.ptp(p[:, 2]))
    # vertical: each visible part is taller than wide, and typically more than a metre tall
    assert len(heights) >= 3
    assert min(heights) > 0.25 and np.median(heights) > 1.0


# ---------------------------------------------------------------------------------------------
# class statistics and size


def test_class_coverage_and_proportions(full_scans):
    labels = np.concatenate([lab for _, lab, _ in full_scans])
    present = set(np.unique(labels).tolist())
    required = {ROAD, SIDEWALK, TERRAIN, BUILDING, VEGETATION, CAR, PERSON, POLE, TRUNK, FENCE}
    assert required <= present, required - present
    frac = {c: np.mean(labels == c) for c in SYNTHETIC_CLASSES}
    assert frac[ROAD] + frac[SIDEWALK] + frac[TERRAIN] + frac[BUILDING] + frac[VEGETATION] > 0.5
    assert frac[PERSON] < 0.05
    assert 0.005 < frac[CAR] < 0.25
    for _, lab, _ in full_scans:  # small classes are present in most scans
        assert np.mean(lab == ROAD) > 0.1


def test_full_scan_size(full_scans):
    for pts, _, _ in full_scans:
        assert 60_000 <= len(pts) <= 140_000  # real HDL-64E scans in SemanticKITTI hold ~120k points


def test_remission_depends_on_material(full_scans):
    pts = np.concatenate([p for p, _, _ in full_scans])
    lab = np.concatenate([lab for _, lab, _ in full_scans])
    rem = {c: pts[lab == c, 3].mean() for c in (ROAD, SIDEWALK, BUILDING, VEGETATION)}
    assert rem[ROAD] < rem[SIDEWALK] < rem[BUILDING]
    assert 0.1 < rem[ROAD] < 0.3 and 0.25 < rem[VEGETATION] < 0.45
    assert pts[:, 3].std() > 0.05


# ---------------------------------------------------------------------------------------------
# files


def test_write_synthetic_sequences_round_trip(tmp_path):
    from pixelwise.data.io.semantic_kitti import read_label, read_scan

    paths = write_synthetic_sequences(tmp_path, 2, seed=3, sequence="05", sensor=SMALL)
    seq = tmp_path / "sequences" / "05"
    assert paths == [seq / "velodyne" / "000000.bin", seq / "velodyne" / "000001.bin"]
    assert frame_seed(3, 1) == 3 * 100003 + 1
    for i, path in enumerate(paths):
        pts, lab = generate_scan(frame_seed(3, i), SMALL)
        got = read_scan(path)
        assert got.dtype == np.float32 and np.array_equal(got, pts)
        sem, inst = read_label(seq / "labels" / f"{i:06d}.label", num_points=len(got))
        assert np.array_equal(sem, lab) and not inst.any()
    assert not np.array_equal(read_scan(paths[0])[:100], read_scan(paths[1])[:100])
    assert write_synthetic_sequences(tmp_path / "empty", 0) == []


# ---------------------------------------------------------------------------------------------
# argument checks


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"azimuth_steps": 0}, "azimuth_steps"),
        ({"azimuth_steps": 100.5}, "azimuth_steps"),
        ({"azimuth_steps": True}, "azimuth_steps"),
        ({"azimuth_steps": 20000}, "azimuth_steps"),
        ({"elevations_deg": (1.0, 2.0)}, "elevations_deg"),
        ({"elevations_deg": ()}, "elevations_deg"),
        ({"elevations_deg": (95.0, 0.0)}, "elevations_deg"),
        ({"elevations_deg": 3.0}, "elevations_deg"),
        ({"azimuth_offsets_deg": (0.0,)}, "azimuth_offsets_deg"),
        ({"mount_height": -1.0}, "mount_height"),
        ({"mount_height": float("nan")}, "mount_height"),
        ({"min_range": -0.1}, "min_range"),
        ({"min_range": 90.0}, "max_range"),
        ({"max_range": float("inf")}, "max_range"),
        ({"range_noise": -0.01}, "range_noise"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": "0.1"}, "dropout"),
    ],
)
def test_bad_sensor_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LidarSensor(**kwargs)


def test_bad_call_arguments(tmp_path):
    for seed in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed"):
            generate_scan(seed, SMALL)
    with pytest.raises(ValueError, match="sensor"):
        generate_scan(0, "hdl64")
    with pytest.raises(ValueError, match="count"):
        write_synthetic_sequences(tmp_path, -1)
    with pytest.raises(ValueError, match="seed"):
        write_synthetic_sequences(tmp_path, 1, seed=-2)
    with pytest.raises(ValueError, match="sequence"):
        write_synthetic_sequences(tmp_path, 1, sequence="a/b")
    with pytest.raises(ValueError, match="sensor"):
        write_synthetic_sequences(tmp_path, 1, sensor=None)
    with pytest.raises(ValueError, match="root"):
        write_synthetic_sequences(None, 1)
