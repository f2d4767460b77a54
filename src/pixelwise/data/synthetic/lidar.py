"""Synthetic SemanticKITTI-style LiDAR scans: a simulated Velodyne HDL-64E in a procedural street.

No data set can be downloaded at run time, so this module is the embedded default data for the
LiDAR segmentation task.  Every scan is produced by vectorised numpy ray casting of a seeded,
procedurally generated street scene, and is labelled with **raw SemanticKITTI semantic ids** (the
ids found in ``.label`` files, before the learning map).

Sensor (:class:`LidarSensor`)
    * 64 lasers with the non-uniform HDL-64E elevations (:data:`HDL64_ELEVATIONS_DEG`): an upper
      block of 32 lasers from +2.0 deg to -8.33 deg (1/3 deg spacing) and a lower block of 32 from
      -8.83 deg to -24.33 deg (1/2 deg spacing), each shifted by a small fixed "factory
      calibration" offset (|offset| <= 0.05 deg, the same for every scan).  Each laser also has a
      small fixed azimuth offset (|offset| <= 0.15 deg, :data:`HDL64_AZIMUTH_OFFSETS_DEG`).
    * ``azimuth_steps`` firings per revolution (default 2048), starting at a random sub-step phase
      per scan.  Ray ``(i, j)`` has elevation ``elevations_deg[i]`` and azimuth
      ``phase + 2*pi*j/azimuth_steps + azimuth_offsets[i]``; all rays start at the sensor origin,
      so every point lies exactly on the ray of one laser (its elevation angle
      ``asin(z / r)`` equals the laser's elevation up to float32 rounding).
    * Gaussian range noise (``range_noise``, plus a little surface roughness on vegetation),
      returns only within ``[min_range, max_range]`` after noise (rays that hit nothing, or hit
      beyond ``max_range``, give no point, as on a real sensor), random dropouts: a base
      probability ``dropout`` that grows with range, plus extra on dark surfaces, car windows,
      grazing incidence.
    * Remission in ``[0, 1]``, quantised to 0.01 like KITTI's, per material and per object
      (calibrated on real SemanticKITTI sequence 00 statistics: road ~0.2, sidewalk ~0.3,
      building ~0.43, vegetation ~0.33, cars dark and glossy with a wide spread, retro-reflective
      sign faces 0.45-0.9, bright lane markings on the road), with per-point noise and a mild
      dependence on the angle of incidence.
    * Coordinates in the sensor frame (x forward, y left, z up), float32; the road surface is the
      plane ``z = -mount_height``.

Scene (one per seed; the street is built in a world frame whose x axis runs along the road, and the
sensor looks along it with a small random yaw)
    * a straight road of 2-4 lanes (ground plane, label road 40) with lane markings; the sensor
      car drives in a right-hand lane;
    * per side of the street: optional parking strip (parking 44, road height), a curb of
      0.10-0.16 m, optional grass strip (terrain 72), a sidewalk (48) and terrain (72) beyond;
      all ground bands extend to infinity, so distant ground is sampled up to ``max_range``;
    * each side is "urban" (continuous building fronts on the sidewalk), "residential" (detached
      buildings set back behind yards with fences or hedges, trees and bushes) or "park" (trees,
      bushes, grass, few distant buildings);
    * buildings (50, rotated boxes), fences (51, thin boxes, partly see-through), vegetation (70:
      ellipsoid tree crowns, bushes, box hedges; porous), trunks (71, vertical cylinders under the
      crowns), poles (80: street lights and sign posts, thin cylinders), traffic signs (81, thin
      plates on posts, bright on the face towards the traffic), cars (10, body box + cabin box,
      parked along the curb and moving in the lanes), persons (30, vertical cylinders of radius
      0.25-0.3 m and height 1.6-1.9 m, mostly on sidewalks), bicyclists (a rider cylinder labelled
      bicyclist 31 above a thin bicycle box labelled bicycle 11 -- SemanticKITTI gives the rider
      and the bicycle separate classes) and a few parked bicycles (11).
    * Unlabeled (0) is never produced: every point comes from a labelled surface.

Ray casting: rays are a ``(n_lasers, azimuth_steps)`` grid.  The ground is intersected band by band
for all rays at once; every other primitive (rotated box: slab test in the box frame, vertical
finite cylinder with top cap, yaw-rotated ellipsoid) is intersected only with the block of rays
whose azimuth columns and laser rows can reach its bounding cylinder, which bounds both memory
(at most one ``n_lasers x azimuth_steps`` block at a time) and work; the nearest hit wins.  A full
64 x 2048 scan takes about 0.05-0.1 s on one CPU core (about 150 bytes of memory per ray).

Randomness: the scene depends only on ``seed`` (not on the sensor), the measurement (phase, noise,
dropouts, porosity) on ``seed`` and the sensor, so lowering ``azimuth_steps`` gives a sparser scan
of the same street.  Output points are ordered by laser (top to bottom), then azimuth.

Typical default scan: ~120k points (60k-140k), class shares averaged over seeds 0-7 about road 27 %,
building 20 %, sidewalk 16 %, vegetation 14 %, terrain 8 %, car 6 %, parking 3 %, fence 2 %,
trunk 1 %, pole 1 %, person/bicyclist/bicycle/traffic-sign 0.1-0.4 % each.  An exotic sensor (say,
only upward lasers) can return an empty scan, which :func:`write_synthetic_sequences` cannot write.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.semantic_kitti import write_label, write_scan

__all__ = [
    "HDL64_AZIMUTH_OFFSETS_DEG",
    "HDL64_ELEVATIONS_DEG",
    "SYNTHETIC_CLASSES",
    "LidarSensor",
    "frame_seed",
    "generate_scan",
    "write_synthetic_sequences",
]

# raw SemanticKITTI semantic ids
CAR, BICYCLE, PERSON, BICYCLIST = 10, 11, 30, 31
ROAD, PARKING, SIDEWALK, BUILDING, FENCE = 40, 44, 48, 50, 51
VEGETATION, TRUNK, TERRAIN, POLE, TRAFFIC_SIGN = 70, 71, 72, 80, 81

SYNTHETIC_CLASSES: tuple[int, ...] = (
    CAR, BICYCLE, PERSON, BICYCLIST, ROAD, PARKING, SIDEWALK, BUILDING, FENCE,
    VEGETATION, TRUNK, TERRAIN, POLE, TRAFFIC_SIGN,
)  # fmt: skip

_FRAME_SEED_STRIDE = 100003


def _hdl64_calibration() -> tuple[np.ndarray, np.ndarray]:
    nominal = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.33, 32)])
    rng = np.random.default_rng(0x64E)  # fixed "factory calibration", same for every scan
    elev = nominal + rng.uniform(-0.05, 0.05, 64)
    azim = rng.uniform(-0.15, 0.15, 64)
    elev.flags.writeable = False
    azim.flags.writeable = False
    return elev, azim


HDL64_ELEVATIONS_DEG, HDL64_AZIMUTH_OFFSETS_DEG = _hdl64_calibration()


# ---------------------------------------------------------------------------------------------
# argument checks


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")  # noqa: TRY004
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _check_seed(name: str, seed) -> int:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class LidarSensor:
    """A spinning multi-beam LiDAR; the defaults model KITTI's Velodyne HDL-64E.

    ``elevations_deg``: one elevation per laser, strictly descending, in (-90, 90).
    ``azimuth_offsets_deg``: per-laser azimuth offsets (same length); ``None`` means the HDL-64E
    calibration when the elevations are the default ones and zeros otherwise.
    ``dropout``: base probability that a return is lost (more at long range / dark surfaces).
    """

    elevations_deg: tuple[float, ...] = tuple(float(e) for e in HDL64_ELEVATIONS_DEG)
    azimuth_steps: int = 2048
    mount_height: float = 1.73
    min_range: float = 2.5
    max_range: float = 80.0
    range_noise: float = 0.02
    dropout: float = 0.02
    azimuth_offsets_deg: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        try:
            elev = tuple(_finite_float("elevations_deg", e) for e in self.elevations_deg)
        except TypeError:
            raise ValueError(
                f"elevations_deg must be a sequence of numbers, got {self.elevations_deg!r}"
            ) from None
        if len(elev) < 1:
            raise ValueError("elevations_deg must hold at least one elevation")
        if any(not -90.0 < e < 90.0 for e in elev):
            raise ValueError("elevations_deg must lie strictly between -90 and 90 degrees")
        if any(a <= b for a, b in itertools.pairwise(elev)):
            raise ValueError("elevations_deg must be strictly descending")
        object.__setattr__(self, "elevations_deg", elev)

        offs = self.azimuth_offsets_deg
        if offs is None:
            default = tuple(float(e) for e in HDL64_ELEVATIONS_DEG)
            offs = (
                tuple(float(a) for a in HDL64_AZIMUTH_OFFSETS_DEG)
                if elev == default
                else (0.0,) * len(elev)
            )
        try:
            offs = tuple(_finite_float("azimuth_offsets_deg", a) for a in offs)
        except TypeError:
            raise ValueError(
                f"azimuth_offsets_deg must be a sequence of numbers, got {offs!r}"
            ) from None
        if len(offs) != len(elev):
            raise ValueError(
                f"azimuth_offsets_deg must have one entry per laser ({len(elev)}), got {len(offs)}"
            )
        if any(abs(a) > 5.0 for a in offs):
            raise ValueError("azimuth_offsets_deg must be within +-5 degrees")
        object.__setattr__(self, "azimuth_offsets_deg", offs)

        if not _is_int(self.azimuth_steps) or not 16 <= self.azimuth_steps <= 16384:
            raise ValueError(
                f"azimuth_steps must be an integer in [16, 16384], got {self.azimuth_steps!r}"
            )
        object.__setattr__(self, "azimuth_steps", int(self.azimuth_steps))
        mh = _finite_float("mount_height", self.mount_height)
        if not 0.2 <= mh <= 10.0:
            raise ValueError(f"mount_height must be in [0.2, 10] m, got {mh!r}")
        lo = _finite_float("min_range", self.min_range)
        hi = _finite_float("max_range", self.max_range)
        if lo < 0.0:
            raise ValueError(f"min_range must be >= 0, got {lo!r}")
        if not lo < hi <= 1000.0:
            raise ValueError(f"max_range must be > min_range ({lo}) and <= 1000 m, got {hi!r}")
        noise = _finite_float("range_noise", self.range_noise)
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"range_noise must be in [0, 1] m, got {noise!r}")
        drop = _finite_float("dropout", self.dropout)
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {drop!r}")
        for name, val in (
            ("mount_height", mh), ("min_range", lo), ("max_range", hi),
            ("range_noise", noise), ("dropout", drop),
        ):  # fmt: skip
            object.__setattr__(self, name, val)

    @property
    def num_lasers(self) -> int:
        return len(self.elevations_deg)


# ---------------------------------------------------------------------------------------------
# scene description


class _Scene:
    """Primitives in the world frame (road along x, road surface z = 0, sensor at (0, sy, H))."""

    # material table columns
    _MAT = ("label", "rem", "rem_std", "rough", "porosity", "drop", "alt_faces", "alt_rem",
            "alt_drop", "inc_k")  # fmt: skip

    def __init__(self, sensor_y: float, height: float, yaw: float):
        self.sensor_y = sensor_y
        self.height = height
        self.yaw = yaw
        self.mats: list[tuple] = []
        self.boxes: list[tuple] = []  # (pid, cx, cy, z0, z1, hx, hy, yaw)
        self.cyls: list[tuple] = []  # (pid, cx, cy, r, z0, z1)
        self.ells: list[tuple] = []  # (pid, cx, cy, cz, rx, ry, rz, yaw)
        self.bands: dict[int, list[tuple]] = {1: [], -1: []}  # side -> [(outer edge, height, pid)]
        self.road_half = 0.0
        self.lane_w = 3.5
        self.n_lanes = 2
        self.mark_phase = 0.0
        self.occ: list[tuple[float, float, float]] = []  # occupied footprint circles
        # the ego vehicle: nothing may be placed on it
        self.keepout = (-3.2, 2.2, sensor_y - 1.3, sensor_y + 1.3)

    def material(self, label, rem, rem_std=0.08, rough=0.0, porosity=0.0, drop=0.0,
                 alt_faces=0, alt_rem=0.0, alt_drop=0.0, inc_k=0.3) -> int:  # fmt: skip
        self.mats.append((label, rem, rem_std, rough, porosity, drop, alt_faces, alt_rem,
                          alt_drop, inc_k))  # fmt: skip
        return len(self.mats) - 1

    def box(self, pid, cx, cy, z0, z1, hx, hy, yaw=0.0):
        self.boxes.append((pid, cx, cy, z0, z1, hx, hy, yaw))

    def cyl(self, pid, cx, cy, r, z0, z1):
        self.cyls.append((pid, cx, cy, r, z0, z1))

    def ell(self, pid, cx, cy, cz, rx, ry, rz, yaw=0.0):
        self.ells.append((pid, cx, cy, cz, rx, ry, rz, yaw))

    def free(self, x, y, r, margin=0.2) -> bool:
        x0, x1, y0, y1 = self.keepout
        if x0 - r < x < x1 + r and y0 - r < y < y1 + r:
            return False
        if self.occ:
            occ = np.asarray(self.occ)
            d2 = (occ[:, 0] - x) ** 2 + (occ[:, 1] - y) ** 2
            if np.any(d2 < (occ[:, 2] + r + margin) ** 2):
                return False
        return True

    def occupy(self, x, y, r):
        self.occ.append((x, y, r))


def _u(rng, a, b) -> float:
    return float(rng.uniform(a, b))


def _add_car(sc: _Scene, rng, x, y, yaw, margin=0.3) -> bool:
    van = rng.random() < 0.12
    length = _u(rng, 4.8, 5.6) if van else _u(rng, 3.9, 4.8)
    width = _u(rng, 1.85, 2.05) if van else _u(rng, 1.70, 1.90)
    c, s = math.cos(yaw), math.sin(yaw)
    r = width / 2 + 0.1
    n = 3
    centres = [(x + c * t, y + s * t) for t in np.linspace(-length / 2 + r, length / 2 - r, n)]
    if not all(sc.free(px, py, r, margin) for px, py in centres):
        return False
    for px, py in centres:
        sc.occupy(px, py, r)
    if rng.random() < 0.45:
        paint = _u(rng, 0.02, 0.08)  # dark paint: low remission, more dropouts
    else:
        paint = _u(rng, 0.10, 0.6)
    drop = 0.08 if paint < 0.08 else 0.0
    clear = _u(rng, 0.18, 0.3)
    body = sc.material(CAR, paint, 0.08, drop=drop, inc_k=0.8)
    glass_faces = 0b1111  # the four vertical faces of the cabin are windows
    if van:
        top = clear + _u(rng, 1.7, 2.0)
        sc.box(body, x, y, clear, top - 0.6, length / 2, width / 2, yaw)
        cab = sc.material(CAR, paint, 0.08, drop=drop, alt_faces=0b0011, alt_rem=0.04,
                          alt_drop=0.35, inc_k=0.8)  # fmt: skip
        sc.box(cab, x, y, top - 0.6, top, length / 2 - 0.05, width / 2 - 0.03, yaw)
    else:
        top_body = clear + _u(rng, 0.6, 0.8)
        sc.box(body, x, y, clear, top_body, length / 2, width / 2, yaw)
        cab_len = length * _u(rng, 0.45, 0.56)
        shift = -length * _u(rng, 0.0, 0.1)
        cab = sc.material(CAR, paint, 0.08, drop=drop, alt_faces=glass_faces, alt_rem=0.04,
                          alt_drop=0.3, inc_k=0.8)  # fmt: skip
        sc.box(cab, x + c * shift, y + s * shift, top_body, top_body + _u(rng, 0.42, 0.58),
               cab_len / 2, width / 2 - 0.08, yaw)  # fmt: skip
    return True


def _add_person(sc: _Scene, rng, x, y, ground) -> bool:
    r = _u(rng, 0.25, 0.3)
    if not sc.free(x, y, r, 0.15):
        return False
    sc.occupy(x, y, r)
    pid = sc.material(PERSON, _u(rng, 0.12, 0.45), 0.1, inc_k=0.4)
    sc.cyl(pid, x, y, r, ground, ground + _u(rng, 1.6, 1.9))
    return True


def _add_bicycle(sc: _Scene, rng, x, y, yaw, ground, rider: bool) -> bool:
    length, r = 1.75, 0.45
    if not sc.free(x, y, r + (0.1 if rider else 0.0), 0.2):
        return False
    sc.occupy(x, y, r)
    bike = sc.material(BICYCLE, _u(rng, 0.1, 0.4), 0.12, porosity=0.45)
    sc.box(bike, x, y, ground, ground + 1.05, length / 2, _u(rng, 0.05, 0.09), yaw)
    if rider:
        pid = sc.material(BICYCLIST, _u(rng, 0.12, 0.45), 0.1, inc_k=0.4)
        sc.cyl(pid, x, y, _u(rng, 0.22, 0.28), ground + 0.8, ground + _u(rng, 1.65, 1.85))
    return True


def _add_tree(sc: _Scene, rng, x, y, ground, big=1.0, base=(0.9, 3.0)) -> bool:
    trunk_r = _u(rng, 0.08, 0.2) * big
    if not sc.free(x, y, trunk_r, 0.5):
        return False
    sc.occupy(x, y, trunk_r + 0.3)
    crown_rx = _u(rng, 1.4, 3.5) * big
    crown_ry = crown_rx * _u(rng, 0.8, 1.2)
    crown_rz = _u(rng, 1.5, 3.5) * big
    cz = ground + _u(rng, *base) + crown_rz
    trunk = sc.material(TRUNK, _u(rng, 0.25, 0.42), 0.13)
    sc.cyl(trunk, x, y, trunk_r, ground, cz)
    crown = sc.material(VEGETATION, _u(rng, 0.28, 0.46), 0.12, rough=0.08,
                        porosity=_u(rng, 0.05, 0.2))  # fmt: skip
    sc.ell(crown, x + rng.normal(0, 0.2), y + rng.normal(0, 0.2), cz, crown_rx, crown_ry, crown_rz,
           _u(rng, 0, math.pi))  # fmt: skip
    return True


def _add_bush(sc: _Scene, rng, x, y, ground, scale=1.0) -> bool:
    rx = _u(rng, 0.5, 1.6) * scale
    if not sc.free(x, y, rx * 0.7, 0.1):
        return False
    sc.occupy(x, y, rx * 0.7)
    ry = rx * _u(rng, 0.6, 1.4)
    rz = _u(rng, 0.4, 1.2) * scale
    pid = sc.material(VEGETATION, _u(rng, 0.28, 0.46), 0.12, rough=0.05,
                      porosity=_u(rng, 0.0, 0.12))  # fmt: skip
    sc.ell(pid, x, y, ground + rz * _u(rng, 0.2, 0.7), rx, ry, rz, _u(rng, 0, math.pi))
    return True


def _add_pole(sc: _Scene, rng, x, y, ground, side, sign_only: bool) -> bool:
    r = _u(rng, 0.04, 0.06) if sign_only else _u(rng, 0.07, 0.14)
    if not sc.free(x, y, r + 0.3, 0.2):
        return False
    sc.occupy(x, y, r + 0.3)
    height = _u(rng, 2.3, 3.2) if sign_only else _u(rng, 5.0, 9.0)
    pole = sc.material(POLE, _u(rng, 0.1, 0.35), 0.12)
    sc.cyl(pole, x, y, r, ground, ground + height)
    if sign_only or rng.random() < 0.3:
        # sign plates face the traffic approaching on that side: -x on the right, mostly
        face = -1.0 if (side < 0 or rng.random() < 0.3) else 1.0
        front = 0 if face < 0 else 1  # box face code of the front face
        sw = _u(rng, 0.5, 0.9)
        sh = _u(rng, 0.5, 0.9)
        top = ground + height if sign_only else ground + _u(rng, 2.5, 3.5)
        yaw = rng.normal(0.0, math.radians(8.0))
        mat = sc.material(TRAFFIC_SIGN, _u(rng, 0.12, 0.3), 0.1, alt_faces=1 << front,
                          alt_rem=_u(rng, 0.45, 0.9), inc_k=0.2)  # fmt: skip
        sc.box(mat, x + face * (r + 0.03), y, top - sh, top, 0.015, sw / 2, yaw)
        if sign_only and rng.random() < 0.4:  # a second, smaller plate below
            sh2 = _u(rng, 0.25, 0.45)
            sc.box(mat, x + face * (r + 0.03), y, top - sh - 0.05 - sh2, top - sh - 0.05, 0.015,
                   sw / 2, yaw)  # fmt: skip
    return True


def _build_scene(seed: int, height: float) -> _Scene:
    rng = np.random.default_rng([seed, 0x5CE4E])
    n_lanes = int(rng.choice([2, 2, 2, 3, 4]))
    lane_w = _u(rng, 3.0, 3.6)
    half = n_lanes * lane_w / 2
    ego_lane = int(rng.integers(0, max(1, n_lanes // 2)))
    sy = -half + lane_w * (ego_lane + 0.5) + rng.normal(0.0, 0.15)
    yaw = float(rng.normal(0.0, math.radians(2.5)))
    sc = _Scene(sy, height, yaw)
    sc.road_half, sc.lane_w, sc.n_lanes = half, lane_w, n_lanes
    sc.mark_phase = _u(rng, 0.0, 12.0)
    x_ext = 100.0

    road = sc.material(ROAD, _u(rng, 0.18, 0.27), 0.08, inc_k=0.15)
    sides = {}
    for side in (1, -1):
        kind = str(rng.choice(["urban", "residential", "park"], p=[0.35, 0.45, 0.2]))
        bands = [(half, 0.0, road)]
        edge = half
        parking = kind != "park" and rng.random() < 0.4
        if parking:
            pw = _u(rng, 2.0, 2.6)
            park = sc.material(PARKING, _u(rng, 0.28, 0.38), 0.08, inc_k=0.15)
            bands.append((edge + pw, 0.0, park))
            edge += pw
        curb = edge
        curb_h = _u(rng, 0.10, 0.16)
        lawn = None
        if kind != "urban" and rng.random() < 0.5:
            lw = _u(rng, 1.0, 3.0)
            grass = sc.material(TERRAIN, _u(rng, 0.28, 0.4), 0.1, inc_k=0.15)
            bands.append((edge + lw, curb_h, grass))
            lawn = (edge, edge + lw)
            edge += lw
        sw = _u(rng, 2.5, 5.0) if kind == "urban" else _u(rng, 1.5, 3.0)
        side_pid = sc.material(SIDEWALK, _u(rng, 0.28, 0.38), 0.08, inc_k=0.15)
        bands.append((edge + sw, curb_h, side_pid))
        walk = (edge, edge + sw)
        edge += sw
        t_h = curb_h + _u(rng, -0.04, 0.12)
        bands.append((math.inf, t_h, sc.material(TERRAIN, _u(rng, 0.28, 0.4), 0.1, inc_k=0.15)))
        sc.bands[side] = bands
        sides[side] = {
            "kind": kind, "parking": parking, "curb": curb, "curb_h": curb_h, "lawn": lawn,
            "walk": walk, "outer": edge, "t_h": t_h,
        }  # fmt: skip

    for side, info in sides.items():
        kind, outer, t_h, curb_h = info["kind"], info["outer"], info["t_h"], info["curb_h"]
        # ---- buildings
        if kind == "urban":
            front = outer + _u(rng, 0.0, 0.8)
        elif kind == "residential":
            front = outer + _u(rng, 3.0, 9.0)
        else:
            front = outer + _u(rng, 20.0, 45.0)
        fences = kind != "urban" and rng.random() < 0.3
        hedge = kind != "urban" and not fences and rng.random() < 0.9
        x = -x_ext + _u(rng, -5.0, 5.0)
        while x < x_ext:
            if kind == "urban":
                length = _u(rng, 10.0, 40.0)
                gap = _u(rng, 1.0, 6.0) if rng.random() < 0.5 else 0.0
                depth, bh = _u(rng, 10.0, 20.0), _u(rng, 7.0, 20.0)
                jitter = _u(rng, 0.0, 0.6)
            elif kind == "residential":
                length, gap = _u(rng, 8.0, 16.0), _u(rng, 4.0, 12.0)
                depth, bh = _u(rng, 8.0, 14.0), _u(rng, 5.0, 10.0)
                jitter = _u(rng, -1.0, 3.0)
            else:
                length, gap = _u(rng, 10.0, 30.0), _u(rng, 10.0, 40.0)
                depth, bh = _u(rng, 10.0, 20.0), _u(rng, 6.0, 15.0)
                jitter = _u(rng, 0.0, 10.0)
            byaw = rng.normal(0.0, math.radians(1.5))
            if kind != "park" or rng.random() < 0.5:
                pid = sc.material(BUILDING, _u(rng, 0.35, 0.6), 0.14, drop=0.01)
                sc.box(pid, x + length / 2, side * (front + jitter + depth / 2), t_h - 0.2,
                       t_h + bh, length / 2, depth / 2, byaw)  # fmt: skip
            if kind == "urban" and gap > 0 and rng.random() < 0.5:
                # a fence or wall closing the gap between two buildings
                mat = sc.material(FENCE, _u(rng, 0.25, 0.45), 0.1, porosity=_u(rng, 0.0, 0.3))
                sc.box(mat, x + length + gap / 2, side * (front + 0.5), t_h,
                       t_h + _u(rng, 1.2, 2.5), gap / 2, 0.06)  # fmt: skip
            elif kind == "urban" and gap > 2.0 and rng.random() < 0.8:
                _add_bush(sc, rng, x + length + gap / 2, side * (front + 1.5), t_h)
            if kind == "residential":
                # front yard: trees and bushes between the sidewalk and the building
                for _ in range(int(rng.integers(2, 9))):
                    px = x + _u(rng, 0.0, length + gap)
                    py = side * _u(rng, outer + 1.0, front + jitter - 0.8)
                    if rng.random() < 0.45:
                        _add_tree(sc, rng, px, py, t_h, big=_u(rng, 0.6, 1.0))
                    else:
                        _add_bush(sc, rng, px, py, t_h)
            x += length + gap
        # ---- fences / hedges along the sidewalk
        if fences or hedge:
            x = -x_ext
            height_f = _u(rng, 0.8, 1.6)
            por = _u(rng, 0.2, 0.6) if fences else 0.05
            rem = _u(rng, 0.25, 0.45)
            while x < x_ext:
                seg, gap = _u(rng, 6.0, 25.0), _u(rng, 2.5, 6.0)
                cy = side * (outer + _u(rng, 0.1, 0.4))
                if fences:
                    pid = sc.material(FENCE, rem, 0.1, porosity=por)
                    sc.box(pid, x + seg / 2, cy, t_h, t_h + height_f, seg / 2, _u(rng, 0.03, 0.08))
                else:
                    pid = sc.material(VEGETATION, _u(rng, 0.28, 0.46), 0.12, rough=0.05,
                                      porosity=0.05)  # fmt: skip
                    hw = _u(rng, 0.3, 0.6)
                    sc.box(pid, x + seg / 2, side * (outer + hw + 0.1), t_h, t_h + height_f + 0.3,
                           seg / 2, hw)  # fmt: skip
                x += seg + gap
        # ---- street trees
        if rng.random() < {"urban": 0.7, "residential": 0.8, "park": 0.9}[kind]:
            lawn = info["lawn"]
            lat = 0.5 * (lawn[0] + lawn[1]) if lawn else info["curb"] + _u(rng, 0.6, 1.2)
            g = curb_h
            spacing = _u(rng, 6.0, 13.0)
            x = -x_ext + _u(rng, 0.0, spacing)
            while x < x_ext:
                if rng.random() < 0.85:
                    # street trees are pruned clear of the traffic
                    _add_tree(sc, rng, x + rng.normal(0, 0.5), side * lat, g,
                              big=_u(rng, 0.6, 0.9), base=(2.3, 3.5))  # fmt: skip
                x += spacing * _u(rng, 0.8, 1.2)
        # ---- park: trees and bushes all over the terrain
        if kind == "park":
            for _ in range(int(rng.integers(50, 100))):
                px = _u(rng, -x_ext, x_ext)
                py = side * (outer + _u(rng, 2.0, front - outer - 2.0))
                if rng.random() < 0.6:
                    _add_tree(sc, rng, px, py, t_h, big=_u(rng, 0.7, 1.3))
                else:
                    _add_bush(sc, rng, px, py, t_h, scale=_u(rng, 1.0, 1.8))
        # ---- backdrop: big trees behind the buildings, seen through the gaps
        if kind != "park" and rng.random() < 0.7:
            x = -x_ext + _u(rng, 0.0, 8.0)
            while x < x_ext:
                py = side * (front + _u(rng, 12.0, 30.0))
                _add_tree(sc, rng, x, py, t_h, big=_u(rng, 1.0, 1.6))
                x += _u(rng, 5.0, 12.0)
        # ---- planters and bushes along urban building fronts
        if kind == "urban" and rng.random() < 0.6:
            for _ in range(int(rng.integers(3, 12))):
                _add_bush(sc, rng, _u(rng, -60.0, 60.0), side * (outer - _u(rng, 0.4, 0.8)), curb_h,
                          scale=_u(rng, 0.4, 0.8))  # fmt: skip
        # ---- street lights and sign posts near the curb
        if rng.random() < 0.8:
            spacing = _u(rng, 20.0, 40.0)
            x = -x_ext + _u(rng, 0.0, spacing)
            lat = info["curb"] + _u(rng, 0.3, 0.6)
            while x < x_ext:
                _add_pole(sc, rng, x, side * lat, curb_h, side, sign_only=False)
                x += spacing
        for _ in range(int(rng.integers(1, 5))):
            _add_pole(sc, rng, _u(rng, -50.0, 50.0), side * (info["curb"] + _u(rng, 0.3, 0.8)),
                      curb_h, side, sign_only=True)  # fmt: skip
        # ---- parked cars
        if info["parking"] or rng.random() < 0.35:
            lat = half + 1.2 if info["parking"] else half - 1.15
            x = -60.0 + _u(rng, 0.0, 6.0)
            while x < 60.0:
                if rng.random() < 0.45:
                    _add_car(sc, rng, x, side * (lat + rng.normal(0, 0.1)),
                             rng.normal(0, math.radians(2.0)), margin=0.1)  # fmt: skip
                x += _u(rng, 5.0, 8.5)
        # ---- parked bicycles
        if rng.random() < 0.3:
            x0 = _u(rng, -30.0, 30.0)
            for k in range(int(rng.integers(1, 4))):
                _add_bicycle(sc, rng, x0 + 0.7 * k, side * (info["walk"][1] - 0.6),
                             math.pi / 2 + rng.normal(0, 0.1), curb_h, rider=False)  # fmt: skip

    # ---- moving cars in the lanes
    for lane in range(n_lanes):
        lat = -half + lane_w * (lane + 0.5)
        for _ in range(int(rng.poisson(0.5))):
            x = _u(rng, 7.0, 45.0) * (1.0 if rng.random() < 0.5 else -1.0)
            _add_car(sc, rng, x, lat + rng.normal(0, 0.2), rng.normal(0, math.radians(1.5)))

    # ---- pedestrians, mostly on the sidewalks
    n_people = 1 + int(rng.poisson(1.2))
    for _ in range(n_people * 3):
        if n_people == 0:
            break
        side = 1 if rng.random() < 0.5 else -1
        info = sides[side]
        x = _u(rng, -35.0, 35.0)
        if rng.random() < 0.88:
            lat = _u(rng, info["walk"][0] + 0.4, info["walk"][1] - 0.3)
            ground = info["curb_h"]
        else:  # crossing the road
            lat = _u(rng, 0.0, half)
            ground = 0.0
        ok = _add_person(sc, rng, x, side * lat, ground)
        if ok and rng.random() < 0.2:  # a companion
            _add_person(sc, rng, x + rng.normal(0, 0.4), side * (lat + _u(rng, 0.6, 0.9)), ground)
        n_people -= ok

    # ---- bicyclists near the road edge
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        side = 1 if rng.random() < 0.5 else -1
        for _try in range(5):
            x = _u(rng, -35.0, 35.0)
            ok = _add_bicycle(sc, rng, x, side * (half - _u(rng, 0.6, 1.0)),
                              rng.normal(0, math.radians(5.0)), 0.0, rider=True)  # fmt: skip
            if ok:
                break
    return sc


# ---------------------------------------------------------------------------------------------
# ray casting

_GLASS_FACES = 0b1111


class _Caster:
    def __init__(self, sensor: LidarSensor, sc: _Scene, rng: np.random.Generator):
        self.rng = rng
        self.max_range = sensor.max_range
        n_l, n_a = sensor.num_lasers, sensor.azimuth_steps
        self.shape = (n_l, n_a)
        self.step = 2.0 * math.pi / n_a
        self.phase = float(rng.uniform(0.0, self.step))
        el = np.radians(np.asarray(sensor.elevations_deg, dtype=np.float64))
        off = np.radians(np.asarray(sensor.azimuth_offsets_deg, dtype=np.float64))
        self.el = el
        self.neg_el = -el  # ascending, for searchsorted
        self.margin = float(np.max(np.abs(off))) + 1.5 * self.step
        az = self.phase + self.step * np.arange(n_a)[None, :] + off[:, None]  # sensor frame
        ce = np.cos(el)[:, None]
        self.dir_sensor = (
            ce * np.cos(az), ce * np.sin(az), np.broadcast_to(np.sin(el)[:, None], self.shape)
        )
        azw = az + sc.yaw
        self.dx = ce * np.cos(azw)
        self.dy = ce * np.sin(azw)
        self.dz = np.ascontiguousarray(np.broadcast_to(np.sin(el)[:, None], self.shape))
        self.axy = np.ascontiguousarray(np.broadcast_to(ce * ce, self.shape))
        self.col_az0 = self.phase + sc.yaw
        self.ox, self.oy, self.oz = 0.0, sc.sensor_y, sc.height
        self.t = np.full(self.shape, np.inf)
        self.pid = np.full(self.shape, -1, dtype=np.int32)
        self.cos = np.zeros(self.shape)
        self.face = np.zeros(self.shape, dtype=np.int8)
        self.porosity = np.array([m[4] for m in sc.mats], dtype=np.float64)

    # -- culling: which block of rays can reach a bounding cylinder
    def block(self, cx, cy, radius, z0, z1):
        vx, vy = cx - self.ox, cy - self.oy
        dc = math.hypot(vx, vy)
        dmin = dc - radius
        if dmin > self.max_range:
            return None
        n_a = self.shape[1]
        if dmin <= 0.05:
            cols = slice(0, n_a)
            dmin = 0.05
        else:
            beta = math.atan2(vy, vx)
            alpha = math.asin(min(1.0, radius / dc)) + self.margin
            lo = math.ceil((beta - alpha - self.col_az0) / self.step)
            hi = math.floor((beta + alpha - self.col_az0) / self.step)
            n = hi - lo + 1
            if n <= 0:
                return None
            if n >= n_a:
                cols = slice(0, n_a)
            else:
                lo %= n_a
                cols = slice(lo, lo + n) if lo + n <= n_a else np.arange(lo, lo + n) % n_a
        dmax = dc + radius
        a0, a1 = z0 - self.oz, z1 - self.oz
        el_lo = min(math.atan2(a0, dmin), math.atan2(a0, dmax)) - 1e-9
        el_hi = max(math.atan2(a1, dmin), math.atan2(a1, dmax)) + 1e-9
        r0 = int(np.searchsorted(self.neg_el, -el_hi, side="left"))
        r1 = int(np.searchsorted(self.neg_el, -el_lo, side="right"))
        if r1 <= r0:
            return None
        return slice(r0, r1), cols

    def update(self, rows, cols, t, cos, face, pid):
        sub = self.t[rows, cols]
        better = t < sub
        por = self.porosity[pid]
        if por > 0.0:
            better &= self.rng.random(t.shape) >= por
        if not better.any():
            return
        self.t[rows, cols] = np.where(better, t, sub)
        self.pid[rows, cols] = np.where(better, pid, self.pid[rows, cols])
        self.cos[rows, cols] = np.where(better, cos, self.cos[rows, cols])
        face = np.asarray(face, dtype=np.int8)
        self.face[rows, cols] = np.where(better, face, self.face[rows, cols])

    # -- primitives
    def cast_box(self, b):
        pid, cx, cy, z0, z1, hx, hy, yaw = b
        blk = self.block(cx, cy, math.hypot(hx, hy), z0, z1)
        if blk is None:
            return
        rows, cols = blk
        c, s = math.cos(yaw), math.sin(yaw)
        vx, vy = self.ox - cx, self.oy - cy
        ox, oy = c * vx + s * vy, -s * vx + c * vy
        oz, hz = self.oz - 0.5 * (z0 + z1), 0.5 * (z1 - z0)
        if abs(ox) <= hx and abs(oy) <= hy and abs(oz) <= hz:
            return  # sensor inside: never for a valid scene
        dx, dy, dz = self.dx[rows, cols], self.dy[rows, cols], self.dz[rows, cols]
        lx = c * dx + s * dy
        ly = c * dy - s * dx
        with np.errstate(divide="ignore", invalid="ignore"):
            tn = tf = None
            tmins = []
            for o, d, h in ((ox, lx, hx), (oy, ly, hy), (oz, dz, hz)):
                inv = 1.0 / d
                t1 = (-h - o) * inv
                t2 = (h - o) * inv
                lo = np.minimum(t1, t2)
                hi = np.maximum(t1, t2)
                tmins.append(lo)
                tn = lo if tn is None else np.maximum(tn, lo)
                tf = hi if tf is None else np.minimum(tf, hi)
        hit = (tn <= tf) & (tn > 0.0)
        if not hit.any():
            return
        t = np.where(hit, tn, np.inf)
        is_x = tmins[0] == tn
        is_y = ~is_x & (tmins[1] == tn)
        dax = np.where(is_x, lx, np.where(is_y, ly, dz))
        axis = np.where(is_x, 0, np.where(is_y, 1, 2))
        face = 2 * axis + (dax < 0.0)
        self.update(rows, cols, t, np.abs(dax), face, pid)

    def cast_cyl(self, cy_):
        pid, cx, cy, r, z0, z1 = cy_
        blk = self.block(cx, cy, r, z0, z1)
        if blk is None:
            return
        vx, vy = self.ox - cx, self.oy - cy
        c = vx * vx + vy * vy - r * r
        if c <= 0.0:
            return
        rows, cols = blk
        dx, dy, dz = self.dx[rows, cols], self.dy[rows, cols], self.dz[rows, cols]
        a = self.axy[rows, cols]
        b = vx * dx + vy * dy
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b - np.sqrt(disc)) / a
            z = self.oz + t * dz
            hit = (disc >= 0.0) & (t > 0.0) & (z >= z0) & (z <= z1)
            t = np.where(hit, t, np.inf)
            cos = np.abs(b + t * a) / r
            face = np.full(t.shape, 6, dtype=np.int8)
            if self.oz > z1:  # top cap, seen from above
                tc = (z1 - self.oz) / dz
                px, py = vx + tc * dx, vy + tc * dy
                cap = (dz < 0.0) & (px * px + py * py <= r * r) & (tc < t)
                if cap.any():
                    t = np.where(cap, tc, t)
                    cos = np.where(cap, -dz, cos)
                    face[cap] = 5
        if not np.isfinite(t).any():
            return
        self.update(rows, cols, t, np.nan_to_num(cos, posinf=0.0), face, pid)

    def cast_ell(self, e):
        pid, cx, cy, cz, rx, ry, rz, yaw = e
        blk = self.block(cx, cy, max(rx, ry), cz - rz, cz + rz)
        if blk is None:
            return
        c_, s_ = math.cos(yaw), math.sin(yaw)
        vx, vy = self.ox - cx, self.oy - cy
        ox = (c_ * vx + s_ * vy) / rx
        oy = (-s_ * vx + c_ * vy) / ry
        oz = (self.oz - cz) / rz
        cc = ox * ox + oy * oy + oz * oz - 1.0
        if cc <= 0.0:
            return
        rows, cols = blk
        dx, dy, dz = self.dx[rows, cols], self.dy[rows, cols], self.dz[rows, cols]
        lx = (c_ * dx + s_ * dy) / rx
        ly = (c_ * dy - s_ * dx) / ry
        lz = dz / rz
        a = lx * lx + ly * ly + lz * lz
        b = ox * lx + oy * ly + oz * lz
        disc = b * b - a * cc
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / a
        hit = (disc >= 0.0) & (t > 0.0)
        if not hit.any():
            return
        t = np.where(hit, t, np.inf)
        # normal in the scaled frame is p / r (gradient), mapped back: n_i ~ p_i / r_i
        with np.errstate(invalid="ignore"):
            px, py, pz = ox + t * lx, oy + t * ly, oz + t * lz
            nx, ny, nz = px / rx, py / ry, pz / rz
            norm = np.sqrt(nx * nx + ny * ny + nz * nz)
            cos = np.abs(nx * lx * rx + ny * ly * ry + nz * lz * rz) / norm
        self.update(rows, cols, t, np.nan_to_num(cos), 6, pid)

    def cast_ground(self, sc: _Scene):
        dz_all = self.dz.ravel()
        dy_all = self.dy.ravel()
        t_out_arr = self.t.ravel()  # views into the (still empty) result arrays
        pid_arr, cos_arr, face_arr = self.pid.ravel(), self.cos.ravel(), self.face.ravel()
        for side in (1, -1):
            sel = (dy_all >= 0.0) if side > 0 else (dy_all < 0.0)
            sel &= dz_all < 0.0  # only descending rays reach the ground
            idx = np.nonzero(sel)[0]
            dz = dz_all[idx]
            v = side * dy_all[idx]
            q0 = side * self.oy
            res_t = np.full(idx.size, np.inf)
            res_pid = np.full(idx.size, -1, dtype=np.int32)
            res_cos = np.zeros(idx.size)
            res_face = np.zeros(idx.size, dtype=np.int8)
            alive = np.ones(idx.size, dtype=bool)
            t_in = np.zeros(idx.size)
            cur_h = 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                for k, (edge, h, pid) in enumerate(sc.bands[side]):
                    t_out = (edge - q0) / v if math.isfinite(edge) else np.full(idx.size, np.inf)
                    if k > 0 and h > cur_h:  # vertical step (curb face) at the band entry
                        f = alive & (self.oz + t_in * dz < h)
                        res_t[f], res_pid[f], res_cos[f], res_face[f] = t_in[f], pid, v[f], 2
                        alive &= ~f
                    tp = (h - self.oz) / dz
                    p = alive & (tp >= t_in) & (tp <= t_out)
                    res_t[p], res_pid[p], res_cos[p], res_face[p] = tp[p], pid, -dz[p], 5
                    alive &= ~p
                    t_in = t_out
                    cur_h = h
            t_out_arr[idx] = res_t
            pid_arr[idx] = res_pid
            cos_arr[idx] = res_cos
            face_arr[idx] = res_face


def frame_seed(seed: int, index: int) -> int:
    """Seed of frame ``index`` of the synthetic sequence written with ``seed``."""
    return int(seed) * _FRAME_SEED_STRIDE + int(index)


def generate_scan(seed: int, sensor: LidarSensor = LidarSensor()) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one sweep; returns ``(points (N, 4) float32 x,y,z,remission, labels (N,) uint32)``.

    Labels are raw SemanticKITTI semantic ids from :data:`SYNTHETIC_CLASSES`.  Deterministic in
    ``(seed, sensor)``; the street scene depends on ``seed`` only.
    """
    seed = _check_seed("seed", seed)
    if not isinstance(sensor, LidarSensor):
        msg = f"sensor must be a LidarSensor, got {type(sensor).__name__}"
        raise ValueError(msg)  # noqa: TRY004
    sc = _build_scene(seed, sensor.mount_height)
    rng = np.random.default_rng([seed, 0x1DA2, sensor.num_lasers, sensor.azimuth_steps])
    caster = _Caster(sensor, sc, rng)
    caster.cast_ground(sc)
    for b in sc.boxes:
        caster.cast_box(b)
    for c in sc.cyls:
        caster.cast_cyl(c)
    for e in sc.ells:
        caster.cast_ell(e)

    mats = np.array(sc.mats, dtype=np.float64)  # (n_materials, 10)
    t = caster.t.ravel()
    hit = np.nonzero(np.isfinite(t))[0]
    t = t[hit]
    pid = caster.pid.ravel()[hit]
    cos = np.clip(caster.cos.ravel()[hit], 0.0, 1.0)
    face = caster.face.ravel()[hit].astype(np.int64)
    m = mats[pid]
    n = hit.size

    # remission: material (or alternative face material), incidence, noise
    alt = (m[:, 6].astype(np.int64) >> face) & 1 == 1
    base = np.where(alt, m[:, 7], m[:, 1])
    inc_k = m[:, 9]
    rem = (base + m[:, 2] * rng.standard_normal(n)) * (1.0 - inc_k + inc_k * cos)
    label = m[:, 0].astype(np.uint32)
    # lane markings (bright paint) on the road
    road = label == ROAD
    if road.any():
        ti = t[road]
        xw = caster.ox + ti * caster.dx.ravel()[hit][road]
        yw = caster.oy + ti * caster.dy.ravel()[hit][road]
        half, lane_w = sc.road_half, sc.lane_w
        mark = np.abs(np.abs(yw) - (half - 0.35)) < 0.07  # solid edge lines
        dashed = ((xw + sc.mark_phase) % 12.0) < 4.0
        for k in range(1, sc.n_lanes):
            mark |= (np.abs(yw - (-half + k * lane_w)) < 0.07) & dashed
        rr = rem[road]
        rr[mark] = rng.uniform(0.5, 0.85, int(mark.sum()))
        rem[road] = rr
    rem = np.clip(rem, 0.0, 1.0)

    # range noise (+ roughness of porous surfaces)
    r = t + sensor.range_noise * rng.standard_normal(n)
    r += m[:, 3] * np.abs(rng.standard_normal(n))
    # dropouts: base, growing with range, dark surfaces, windows, grazing incidence
    p = sensor.dropout * (1.0 + 3.0 * (t / sensor.max_range) ** 2)
    p = p + np.where(alt, m[:, 8], m[:, 5])
    p = p + 0.25 * np.clip((0.06 - rem) / 0.06, 0.0, 1.0)
    p = p + 0.1 * (1.0 - cos) ** 6
    keep = (r >= sensor.min_range) & (r <= sensor.max_range) & (rng.random(n) >= p)

    r, hit, rem, label = r[keep], hit[keep], rem[keep], label[keep]
    points = np.empty((r.size, 4), dtype=np.float32)
    for k in range(3):
        points[:, k] = r * caster.dir_sensor[k].ravel()[hit]
    points[:, 3] = np.round(rem * 100.0) / 100.0
    return points, label


def write_synthetic_sequences(
    root, count: int, seed: int = 0, sequence: str = "00", sensor: LidarSensor = LidarSensor()
) -> list[Path]:
    """Write ``count`` synthetic scans in the SemanticKITTI layout; return the scan paths.

    Frame ``i`` goes to ``root/sequences/<sequence>/velodyne/<i:06d>.bin`` and
    ``.../labels/<i:06d>.label`` (semantic id, instance 0) and is generated from
    ``frame_seed(seed, i) = seed * 100003 + i``.
    """
    if not _is_int(count) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    seed = _check_seed("seed", seed)
    if not isinstance(sequence, str) or not sequence or any(c in sequence for c in "/\\") \
            or sequence in (".", ".."):  # fmt: skip
        raise ValueError(f"sequence must be a non-empty name without separators, got {sequence!r}")
    if not isinstance(sensor, LidarSensor):
        msg = f"sensor must be a LidarSensor, got {type(sensor).__name__}"
        raise ValueError(msg)  # noqa: TRY004
    try:
        root = Path(root)
    except TypeError:
        raise ValueError(f"root must be a path, got {root!r}") from None
    seq_dir = root / "sequences" / sequence
    (seq_dir / "velodyne").mkdir(parents=True, exist_ok=True)
    (seq_dir / "labels").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(int(count)):
        points, labels = generate_scan(frame_seed(seed, i), sensor)
        scan_path = seq_dir / "velodyne" / f"{i:06d}.bin"
        write_scan(scan_path, points)
        write_label(seq_dir / "labels" / f"{i:06d}.label", labels)
        paths.append(scan_path)
    return paths
