"""Synthetic training pairs for deep joint upsampling (depth / disparity and optical flow).

Each item is a layered 2.5-D scene rendered on the fly from ``(seed, index)``:

* a background of 1-3 large planes (back wall, floor/ground with depth growing upwards,
  sometimes a side wall; the visible surface is the nearest plane, so the planes meet in
  creases with continuous depth), each with its own texture and some colour-only decals
  (posters, stripes) on it;
* 4-12 foreground layers painted back to front -- ellipses, convex and concave polygons,
  rectangles, thin bars/poles, rings and composites of those, 3 % to 50 % of the image side --
  each with its own texture, shading, colour-only decals, sometimes a soft cast shadow, and its
  own depth plane ``a + b*x + c*y`` (mostly fronto-parallel, some slanted, a few ellipses bulge),
  always nearer than everything it covers;
* camera-like imaging: shape edges are anti-aliased (soft, about one pixel) in the image while the
  target keeps the hard step, a smooth illumination field, a slight blur, mild noise.

So depth discontinuities coincide with colour edges, while texture, decals, shadows, shading and
creases give many colour edges that are not depth edges.

Target conventions
    ``kind="depth"``: one channel, *disparity-like* (inverse depth, as the Middlebury ground truth
    used for evaluation): larger = nearer, strictly positive on valid pixels, nearest/farthest
    ratio between 2 and 8 (log-uniform); planes are linear in it (exact for 3-D planes under a
    pinhole camera). Small multiplicative noise (<= 0.6 %).
    ``kind="flow"``: two channels (u along +x = columns, v along +y = rows) in pixels. Each layer
    moves with its own 2-D affine motion (translation up to 10 % of the side, small rotation and
    scale change) or, for static objects, with the camera; the background moves with a camera
    pan/zoom/roll plus depth-dependent parallax (smooth, continuous across creases).

Invalid pixels (``valid`` False, target 0.0): about ``invalid_fraction`` of the image, mostly
thin occlusion bands on the far side of discontinuities (where the far surface would be hidden in
the second view: left of nearer objects for stereo, ahead of an object's relative motion for
flow), plus small blobs near discontinuities and a few random ones.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch.utils.data import Dataset

from .textures import _blur3, texture_chw

__all__ = ["SyntheticUpsampling", "render_scene", "KINDS"]

KINDS = {"depth": 1, "flow": 2}

_F = np.float32
_SHAPES = ("ellipse", "convex", "concave", "rect", "bar", "ring", "composite")
_SHAPE_P = (0.20, 0.13, 0.14, 0.17, 0.15, 0.08, 0.13)


# --------------------------------------------------------------------------------------------
# argument checks


def _check_size(size) -> tuple[int, int]:
    try:
        items = list(size)
    except TypeError:
        raise ValueError(f"size: expected two ints >= 16 (height, width), got {size!r}") from None
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in items):
        raise ValueError(f"size: expected two ints >= 16 (height, width), got {size!r}")
    h, w = (int(v) for v in items)
    if h < 16 or w < 16:
        raise ValueError(f"size: expected two ints >= 16 (height, width), got {size!r}")
    return h, w


def _check_args(length, size, kind, seed, invalid_fraction):
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length: expected an int >= 1, got {length!r}")
    size = _check_size(size)
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {sorted(KINDS)}, got {kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    try:
        f = float(invalid_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"invalid_fraction: expected a number in [0, 0.5), got {invalid_fraction!r}") from None
    if not 0.0 <= f < 0.5:
        raise ValueError(f"invalid_fraction: expected a number in [0, 0.5), got {invalid_fraction!r}")
    return int(length), size, int(seed), f


# --------------------------------------------------------------------------------------------
# small helpers


def _soft(mask: np.ndarray, w: float) -> np.ndarray:
    """Anti-aliased coverage of a hard mask: blend of the mask and its 3x3 blur (weight w)."""
    m = mask.astype(_F)
    b = _blur3(m)
    if w >= 1.0:
        return b
    return m + _F(w) * (b - m)


def _logu(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _bbox_of(mask: np.ndarray):
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


# --------------------------------------------------------------------------------------------
# shapes: primitives evaluated on a pixel box


def _star(rng, n, concave):
    """Vertices of a star-shaped polygon in unit coordinates (angular gaps < pi)."""
    gaps = rng.uniform(0.6, 1.0, n)
    ang = np.cumsum(gaps) / gaps.sum() * 2 * np.pi + rng.uniform(0, 2 * np.pi)
    ang = np.mod(ang, 2 * np.pi) - np.pi
    ang.sort()
    r = rng.uniform(0.3, 1.0, n) if concave else np.ones(n)
    return np.stack([r * np.cos(ang), r * np.sin(ang)], 1), ang


def _primitive(rng, kind, cx, cy, size, S):
    """A primitive: dict with centre, rotation, parameters and bounding radius."""
    theta = rng.uniform(0, np.pi)
    a = size / 2
    p = {"kind": kind, "cx": cx, "cy": cy, "theta": theta}
    if kind == "ellipse":
        p.update(a=a, b=a * rng.uniform(0.3, 1.0), ext=a)
    elif kind == "ring":
        p.update(a=a, b=a * rng.uniform(0.5, 1.0), inner=rng.uniform(0.35, 0.8), ext=a)
    elif kind == "rect":
        b = a * rng.uniform(0.15, 1.0)
        p.update(a=a, b=b, ext=float(np.hypot(a, b)))
    elif kind == "bar":
        length = S * rng.uniform(0.1, 0.6)
        half_t = max(0.75, S * _logu(rng, 0.003, 0.025))
        if rng.random() < 0.6:  # poles and beams are mostly vertical/horizontal
            theta = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05)
        p.update(theta=theta, a=length, b=half_t, ext=float(np.hypot(length, half_t)))
    elif kind in ("convex", "concave"):
        n = int(rng.integers(3, 9)) if kind == "convex" else int(rng.integers(5, 13))
        verts, ang = _star(rng, n, kind == "concave")
        p.update(a=a, b=a * rng.uniform(0.4, 1.0), verts=verts, ang=ang, ext=a)
    else:
        raise AssertionError(kind)
    return p


def _inside(p, xs, ys):
    """Hard mask of primitive p on the grid xs (1, w) x ys (h, 1)."""
    c, s = np.cos(p["theta"]), np.sin(p["theta"])
    dx, dy = xs - _F(p["cx"]), ys - _F(p["cy"])
    u = _F(c) * dx + _F(s) * dy
    v = _F(c) * dy - _F(s) * dx
    kind = p["kind"]
    if kind in ("rect", "bar"):
        return (np.abs(u) <= p["a"]) & (np.abs(v) <= p["b"])
    un, vn = u / _F(p["a"]), v / _F(p["b"])
    if kind == "ellipse":
        return un * un + vn * vn <= 1.0
    if kind == "ring":
        r2 = un * un + vn * vn
        return (r2 <= 1.0) & (r2 >= _F(p["inner"] ** 2))
    # star-shaped polygon: p is inside iff it lies on the inner side of the edge of its wedge
    verts, ang = p["verts"], p["ang"]
    n = len(ang)
    k = (np.searchsorted(ang, np.arctan2(vn, un)) - 1) % n
    p0, p1 = verts, np.roll(verts, -1, axis=0)
    e = (p1 - p0).astype(_F)
    lim = (p0[:, 0] * p1[:, 1] - p0[:, 1] * p1[:, 0]).astype(_F)
    return un * e[k, 1] - vn * e[k, 0] <= lim[k]


def _random_shape(rng, H, W, S):
    """A random foreground shape: (row slice, col slice, mask, centre, size, bulge r2 or None)."""
    kind = _SHAPES[rng.choice(len(_SHAPES), p=_SHAPE_P)]
    size = S * (_logu(rng, 0.12, 0.55) if rng.random() < 0.5 else _logu(rng, 0.03, 0.12))
    cx, cy = rng.uniform(-0.08 * W, 1.08 * W), rng.uniform(-0.08 * H, 1.08 * H)
    if kind == "composite":  # a body plus attached bars/blobs (signs, tables, lamps, vehicles...)
        body = _primitive(rng, str(rng.choice(["rect", "ellipse", "convex"])), cx, cy, max(size, 0.08 * S), S)
        prims = [body]
        for _ in range(int(rng.integers(1, 4))):
            ang = rng.uniform(0, 2 * np.pi)
            d = body["ext"] * rng.uniform(0.3, 1.1)
            sub = str(rng.choice(["bar", "bar", "ellipse", "rect"]))
            sp = _primitive(rng, sub, cx + d * np.cos(ang), cy + d * np.sin(ang),
                            body["ext"] * rng.uniform(0.3, 0.9), S)
            if sub == "bar":
                sp["a"] = min(sp["a"], 1.2 * body["ext"])
                sp["ext"] = float(np.hypot(sp["a"], sp["b"]))
            prims.append(sp)
    else:
        prims = [_primitive(rng, kind, cx, cy, size, S)]
    x0 = min(int(np.floor(p["cx"] - p["ext"])) for p in prims) - 2
    x1 = max(int(np.ceil(p["cx"] + p["ext"])) for p in prims) + 3
    y0 = min(int(np.floor(p["cy"] - p["ext"])) for p in prims) - 2
    y1 = max(int(np.ceil(p["cy"] + p["ext"])) for p in prims) + 3
    x0, x1, y0, y1 = max(x0, 0), min(x1, W), max(y0, 0), min(y1, H)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    xs = np.arange(x0, x1, dtype=_F)[None, :]
    ys = np.arange(y0, y1, dtype=_F)[:, None]
    mask = _inside(prims[0], xs, ys)
    for p in prims[1:]:
        mask |= _inside(p, xs, ys)
    if np.count_nonzero(mask) < 3:
        return None
    r2 = None
    if prims[0]["kind"] == "ellipse" and len(prims) == 1:
        p = prims[0]
        c, s = np.cos(p["theta"]), np.sin(p["theta"])
        dx, dy = xs - _F(p["cx"]), ys - _F(p["cy"])
        un = (_F(c) * dx + _F(s) * dy) / _F(p["a"])
        vn = (_F(c) * dy - _F(s) * dx) / _F(p["b"])
        r2 = un * un + vn * vn
    ext = max(p["ext"] for p in prims)
    return slice(y0, y1), slice(x0, x1), mask, (prims[0]["cx"], prims[0]["cy"]), ext, r2


def _decal_mask(rng, h, w, S, region_ext):
    """A colour-only mark on a (h, w) box: stripe band, spot, rectangle or small polygon."""
    xs = np.arange(w, dtype=_F)[None, :]
    ys = np.arange(h, dtype=_F)[:, None]
    kind = rng.choice(["stripe", "spot", "rect", "convex", "stripes"], p=[0.25, 0.2, 0.25, 0.15, 0.15])
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    if kind in ("stripe", "stripes"):
        a = rng.uniform(0, np.pi) if rng.random() < 0.5 else rng.choice([0.0, np.pi / 2])
        t = _F(np.cos(a)) * (xs - _F(cx)) + _F(np.sin(a)) * (ys - _F(cy))
        width = max(1.0, region_ext * _logu(rng, 0.03, 0.3))
        if kind == "stripe":
            return np.abs(t) <= width / 2
        period = width * rng.uniform(2.0, 4.0)
        return np.mod(t, _F(period)) < width
    size = max(3.0, 2 * region_ext * _logu(rng, 0.1, 0.7))
    kind = {"spot": "ellipse"}.get(kind, kind)
    return _inside(_primitive(rng, kind, cx, cy, size, S), xs, ys)


def _paint_decals(rng, tex, n, S, ext, region=None, want_cover=False):
    """Blend n decals into a (3, h, w) texture in place (only inside ``region`` if given);
    returns the decal coverage (h, w) when ``want_cover``."""
    h, w = tex.shape[1:]
    cover = np.zeros((h, w), _F) if want_cover else None
    for _ in range(n):
        m = _decal_mask(rng, h, w, S, ext)
        if not m.any():
            continue
        a = _soft(m, rng.uniform(0.3, 1.0)) * _F(rng.uniform(0.6, 1.0))
        if region is not None:
            a *= region
        if rng.random() < 0.65:
            col = (texture_chw(rng, 1, 1)[:, 0, 0] if rng.random() < 0.3 else
                   np.clip(rng.uniform(0, 1, 3) * rng.uniform(0.2, 1.0) + rng.uniform(0, 0.3), 0, 1))
            dec = col.astype(_F)[:, None, None]
        else:
            dec = texture_chw(rng, h, w)
        tex += a[None] * (dec - tex)
        if cover is not None:
            np.maximum(cover, a, out=cover)
    return cover


# --------------------------------------------------------------------------------------------
# scene


def _background(rng, H, W):
    """Background planes as (a, b, c): d = a + b*(x - W/2) + c*(y - H/2); wall disparity ~1."""
    r = rng.random()
    wall = (1.0, rng.normal(0, 0.25) / W, rng.normal(0, 0.25) / H)
    planes = []
    kind = "single" if r < 0.3 else "room" if r < 0.65 else "room+side" if r < 0.82 else "outdoor"
    if kind == "single":
        if rng.random() < 0.35:  # a strongly slanted single surface (table top, ground seen from above)
            g = _logu(rng, 0.5, 3.0)
            a = rng.uniform(0, 2 * np.pi)
            planes.append((1.0 + g / 2, g * np.cos(a) / W, g * np.sin(a) / H))
        else:
            planes.append(wall)
    else:
        far = wall if kind != "outdoor" else (rng.uniform(0.15, 0.5), 0.0, 0.0)
        planes.append(far)
        horizon = H * rng.uniform(-0.4, 0.6)  # row where the floor would reach zero disparity
        bottom = rng.uniform(1.5, 4.0) * far[0]
        c = bottom / (H - 1 - horizon)
        roll = rng.normal(0, 0.15) * bottom / W
        planes.append((c * (H / 2 - horizon), roll, c))  # floor: disparity grows downwards
        if kind == "room+side":
            side = rng.choice([-1.0, 1.0])
            xc = W * rng.uniform(0.05, 0.45) if side < 0 else W * rng.uniform(0.55, 0.95)
            slope = -side * _logu(rng, 1.0, 4.0) / W
            planes.append((1.0 + slope * (W / 2 - xc), slope, 0.0))
    return planes


def _layer_plane(rng, ext):
    r = rng.random()
    if r < 0.45:
        var = 0.0
    elif r < 0.85:
        var = rng.uniform(0.0, 0.15)
    else:
        var = rng.uniform(0.3, 1.5)
    phi = rng.uniform(0, 2 * np.pi)
    e = max(ext, 1.0)
    return var * np.cos(phi) / (2 * e), var * np.sin(phi) / (2 * e)


def _random_affine(rng, S, trans, rot, scale):
    a = rng.uniform(0, 2 * np.pi)
    t = trans * S * np.sqrt(rng.random()) * np.array([np.cos(a), np.sin(a)])
    th = rng.uniform(-rot, rot)
    s = np.exp(rng.uniform(-scale, scale))
    A = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) - np.eye(2)
    return t.astype(_F), A.astype(_F)


def _affine_flow(t, A, xs, ys, cx, cy):
    """(2, h, w) flow t + A (p - c) on the grid xs (1, w) x ys (h, 1)."""
    dx, dy = xs - _F(cx), ys - _F(cy)
    u = t[0] + A[0, 0] * dx + A[0, 1] * dy
    v = t[1] + A[1, 0] * dx + A[1, 1] * dy
    return np.stack(np.broadcast_arrays(u, v))


def _invalid_mask(rng, L, M, n_target, K, directions):
    """Occlusion bands on the far side of layer boundaries plus small blobs; ~n_target pixels.

    L: (H, W) layer order (larger = nearer); M: (2, H, W) apparent motion towards the second view
    (stereo: (-disparity, 0); flow: the flow). A far pixel is occluded when the near layer next
    to it moves over it; band widths scale with a per-scene factor chosen to hit the count.
    """
    H, W = L.shape
    inv = np.zeros(H * W, bool)
    if n_target <= 0:
        return inv.reshape(H, W)
    idx_parts, alpha_parts, seeds = [], [], []
    for axis in directions:
        n0 = L.shape[axis] - 1
        lo = (slice(None), slice(0, n0)) if axis == 1 else (slice(0, n0), slice(None))
        hi = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
        comp = M[0] if axis == 1 else M[1]  # motion along this axis: u for columns, v for rows
        la, lb, ma, mb = L[lo], L[hi], comp[lo], comp[hi]
        for front_is_b in (True, False):
            sel = lb > la if front_is_b else la > lb
            ys, xs = np.nonzero(sel)
            if ys.size == 0:
                continue
            if front_is_b:  # back pixel at the lower index, band goes towards lower indices
                step = -1
                close = -(mb[ys, xs] - ma[ys, xs])
                lf = lb[ys, xs]
            else:  # back pixel at the higher index
                step = 1
                close = ma[ys, xs] - mb[ys, xs]
                lf = la[ys, xs]
                if axis == 1:
                    xs = xs + 1
                else:
                    ys = ys + 1
            ok = close > 1e-6
            ys, xs, close, lf = ys[ok], xs[ok], close[ok], lf[ok]
            seeds.append(ys * W + xs)
            for j in range(K):
                py = ys + step * j if axis == 0 else ys
                px = xs + step * j if axis == 1 else xs
                inside = (py >= 0) & (py < H) & (px >= 0) & (px < W)
                py, px, c, f = py[inside], px[inside], close[inside], lf[inside]
                keep = L[py, px] < f
                idx_parts.append(py[keep] * W + px[keep])
                alpha_parts.append((j + 1) / c[keep])
    n_occ = int(round(0.7 * n_target))
    if idx_parts and n_occ > 0:
        idx = np.concatenate(idx_parts)
        if idx.size:
            need = np.full(H * W, np.inf, _F)
            np.minimum.at(need, idx, np.concatenate(alpha_parts).astype(_F))
            cand = np.flatnonzero(np.isfinite(need))
            if cand.size <= n_occ:
                inv[cand] = True
            else:
                thr = np.partition(need[cand], n_occ - 1)[n_occ - 1]
                inv[cand[need[cand] <= thr]] = True
    # small blobs: mostly seeded just beside discontinuities on the far side, some anywhere
    seeds = np.concatenate(seeds) if seeds else np.zeros(0, np.intp)
    r = np.arange(-4, 5)
    oy, ox = np.meshgrid(r, r, indexing="ij")
    oy, ox, od2 = oy.ravel(), ox.ravel(), (oy * oy + ox * ox).ravel()
    for _ in range(12):
        done = int(np.count_nonzero(inv))
        missing = n_target - done
        if missing <= max(1, 0.03 * n_target):
            break
        r_max = float(np.clip(np.sqrt(missing / np.pi), 0.8, 4.2))  # tiny needs, tiny blobs
        area = np.pi * (r_max ** 3 - 0.8 ** 3) / (3 * max(r_max - 0.8, 1e-6)) if r_max > 0.8 else 2.0
        n = max(1, int(np.ceil(missing / (area * max(0.2, 1.0 - done / (H * W))))))
        near = rng.random(n) < (0.8 if seeds.size else 0.0)
        centre = rng.integers(0, H * W, n)
        if seeds.size:
            centre[near] = seeds[rng.integers(0, seeds.size, int(near.sum()))]
        rad = rng.uniform(0.8, r_max + 1e-6, n)
        cy, cx = centre // W, centre % W
        sel = od2[None, :] <= (rad * rad)[:, None]
        py = (cy[:, None] + oy[None, :])[sel]
        px = (cx[:, None] + ox[None, :])[sel]
        ok = (py >= 0) & (py < H) & (px >= 0) & (px < W)
        flat = py[ok] * W + px[ok]
        blob = np.repeat(np.arange(n), sel.sum(1))[ok]
        new = ~inv[flat]
        counts = np.bincount(blob[new], minlength=n)
        if counts.sum() > missing * 1.1:  # do not overshoot: drop whole blobs beyond the need
            keep_blobs = np.cumsum(counts) <= missing * 1.1
            keep_blobs[0] = True
            flat = flat[keep_blobs[blob]]
        inv[flat] = True
    return inv.reshape(H, W)


def render_scene(seed: int, index: int, size=(256, 256), kind: str = "depth",
                 invalid_fraction: float = 0.02, *, debug: bool = False) -> dict:
    """Render one scene as numpy arrays: a pure function of its arguments.

    Returns ``image`` (3, H, W) float32 in [0, 1], ``target`` (C, H, W) float32 (0 where
    invalid), ``valid`` (H, W) bool. With ``debug=True`` also ``layer_index`` (H, W) int16
    (0 = background, k = k-th painted layer, visible one), ``layers`` (list, background first, of
    dicts with full-frame ``mask`` (H, W) bool and ``target`` (C, H, W) holding that layer's own
    noise-free target on its mask) and ``decal`` (H, W) float32, the visible decal coverage.
    """
    _, (H, W), seed, invalid_fraction = _check_args(1, size, kind, seed, invalid_fraction)
    index = operator.index(index)
    if index < 0:
        raise IndexError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng([seed, index])
    S = 0.5 * (H + W)
    X = np.arange(W, dtype=_F)[None, :]
    Y = np.arange(H, dtype=_F)[:, None]
    flow_kind = kind == "flow"

    # ---- background planes: the visible one is the nearest (largest disparity)
    planes = _background(rng, H, W)
    vals = [_F(a) + _F(b) * (X - _F(W / 2)) + _F(c) * (Y - _F(H / 2)) for a, b, c in planes]
    if len(vals) == 1:
        D = np.broadcast_to(vals[0], (H, W)).astype(_F)
        owner = None
    else:
        st = np.stack(np.broadcast_arrays(*vals))
        owner = st.argmax(0)
        D = st.max(0)
    dmin = float(D.min())
    if dmin < 0.1:  # keep every background point in front of the camera
        D += _F(0.1 - dmin)
    img = texture_chw(rng, H, W)
    if owner is not None:
        for k in range(1, len(planes)):
            region = owner == k
            bb = _bbox_of(region)
            if bb is None:
                continue
            tex = texture_chw(rng, bb[0].stop - bb[0].start, bb[1].stop - bb[1].start)
            a = _soft(region, rng.uniform(0.4, 1.0))[bb]
            view = img[:, bb[0], bb[1]]
            view += a[None] * (tex - view)
    decal_cover = np.zeros((H, W), _F) if debug else None
    for _ in range(int(rng.integers(0, 5))):  # posters, stripes, marks on the background
        region = owner == rng.integers(len(planes)) if owner is not None else np.ones((H, W), bool)
        bb = _bbox_of(region)
        if bb is None:
            continue
        ext = 0.5 * max(bb[0].stop - bb[0].start, bb[1].stop - bb[1].start)
        cover = _paint_decals(rng, img[:, bb[0], bb[1]], 1, S, ext,  # stays on its own plane
                              region=region[bb] if owner is not None else None, want_cover=debug)
        if debug:
            np.maximum(decal_cover[bb], cover, out=decal_cover[bb])

    L = np.zeros((H, W), np.int16)
    if flow_kind:
        t_cam, A_cam = _random_affine(rng, S, 0.04, 0.03, 0.03)
        par = rng.normal(0, 0.02 * S, 2).astype(_F)  # parallax per unit of disparity
        d_unit = _F(max(float(D.max()), 1e-3))

        def camera_flow(xs, ys, disp):
            f = _affine_flow(t_cam, A_cam, xs, ys, W / 2, H / 2)
            f += par[:, None, None] * (disp / d_unit)[None]
            return f

        flow = camera_flow(X, Y, D)
    layers = [] if debug else None
    if debug:
        layers.append((slice(0, H), slice(0, W), np.ones((H, W), bool),
                       (flow.copy() if flow_kind else D.copy())))

    # ---- foreground layers, back to front
    n_layers = int(rng.integers(4, 13))
    k = 0  # painted layers so far
    for _ in range(n_layers):
        shp = _random_shape(rng, H, W, S)
        if shp is None:
            continue
        k += 1
        sy, sx, mask, (cx, cy), ext, r2 = shp
        xs, ys = X[:, sx], Y[sy, :]
        gx, gy = _layer_plane(rng, ext)
        plane = _F(gx) * (xs - _F(cx)) + _F(gy) * (ys - _F(cy))
        bulge = r2 is not None and rng.random() < 0.3
        if bulge:
            plane = plane + _F(rng.uniform(0.05, 0.4)) * np.sqrt(np.maximum(_F(1) - r2, 0))
        dview = D[sy, sx]
        under = float(dview[mask].max())
        gap = _logu(rng, 0.03, 1.0)
        plane = plane + _F(under + gap - float(plane[mask].min()))
        np.copyto(dview, plane, where=mask)
        np.copyto(L[sy, sx], np.int16(k), where=mask)
        if flow_kind:
            if rng.random() < 0.2:  # static object: moves with the camera (parallax from its depth)
                lf = camera_flow(xs, ys, np.broadcast_to(plane, mask.shape))
            else:
                t, A = _random_affine(rng, S, 0.10, 0.06, 0.05)
                lf = _affine_flow(t, A, xs, ys, cx, cy)
            np.copyto(flow[:, sy, sx], lf, where=mask[None])
        if debug:
            layers.append((sy, sx, mask.copy(), (lf if flow_kind else np.broadcast_to(plane, mask.shape)).copy()))

        # image: optional soft cast shadow on what is behind, then the layer itself
        h, w = mask.shape
        alpha = _soft(mask, rng.uniform(0.35, 1.0))
        if rng.random() < 0.3:
            oy, ox = (rng.normal(0, 0.02 * S, 2)).round().astype(int)
            sh = _blur3(alpha) * _F(rng.uniform(0.15, 0.5))
            y0, x0 = sy.start + oy, sx.start + ox
            ty0, tx0 = max(y0, 0), max(x0, 0)
            ty1, tx1 = min(y0 + h, H), min(x0 + w, W)
            if ty1 > ty0 and tx1 > tx0:
                part = sh[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]
                img[:, ty0:ty1, tx0:tx1] *= (1 - part)[None]
        tex = texture_chw(rng, h, w)
        gain = rng.uniform(0.55, 1.25)
        g = rng.normal(0, 0.25, 2) / max(ext, 1.0)
        shade = _F(gain) * (_F(1) + _F(g[0]) * (xs - _F(cx)) + _F(g[1]) * (ys - _F(cy)))
        if bulge or (r2 is not None and rng.random() < 0.3):
            shade = shade * (_F(1) - _F(rng.uniform(0.2, 0.6)) * np.minimum(r2, 1))
        tex *= np.maximum(shade, _F(0.15))[None]
        cover = None
        if min(h, w) >= 10 and rng.random() < 0.5:
            cover = _paint_decals(rng, tex, int(rng.integers(1, 3)), S, ext, want_cover=debug)
        view = img[:, sy, sx]
        view += alpha[None] * (tex - view)
        if debug:
            dc = decal_cover[sy, sx]
            np.copyto(dc, cover if cover is not None else _F(0), where=mask)

    # ---- camera: illumination, blur, noise
    ty = np.linspace(-0.5, 0.5, H, dtype=_F)
    tx = np.linspace(-0.5, 0.5, W, dtype=_F)
    fy = 1 + _F(rng.normal(0, 0.3)) * ty + _F(rng.normal(0, 0.4)) * ty * ty
    fx = 1 + _F(rng.normal(0, 0.3)) * tx + _F(rng.normal(0, 0.4)) * tx * tx
    illum = np.clip(np.outer(fy, fx) * _F(rng.uniform(0.75, 1.2)), 0.3, 1.6)
    img *= illum[None]
    bw = rng.uniform(0.0, 0.6)
    if bw > 0.15:
        img += _F(bw) * (_blur3(img, axes=(1, 2)) - img)
    sigma = _logu(rng, 0.002, 0.02)
    img += _F(sigma * np.sqrt(12.0)) * (rng.random((3, H, W), dtype=_F) - _F(0.5))
    np.clip(img, 0.0, 1.0, out=img)

    # ---- target
    if flow_kind:
        target = flow
        motion = flow
        directions = (0, 1)
    else:
        lo, hi = float(D.min()), float(D.max())
        near = _logu(rng, 1.0, 10.0)
        ratio = _logu(rng, 2.0, 8.0)
        scale = (near * ratio - near) / max(hi - lo, 1e-6)

        def remap(d):
            return (_F(near) + _F(scale) * (d - _F(lo))).astype(_F)

        target = remap(D)[None]
        motion = np.stack([-D, np.zeros_like(D)])
        directions = (1,)
    n_inv = int(round(invalid_fraction * H * W))
    K = max(3, int(round(0.03 * S)))
    invalid = _invalid_mask(rng, L, motion, n_inv, K, directions)
    if not flow_kind:
        target *= 1 + _F(rng.uniform(0.0, 0.006)) * rng.standard_normal((1, H, W), dtype=_F)
    target[:, invalid] = 0.0
    out = {"image": img, "target": target, "valid": ~invalid}
    if debug:
        C = KINDS[kind]
        full = []
        for sy, sx, m, val in layers:
            fm = np.zeros((H, W), bool)
            fm[sy, sx] = m
            ft = np.zeros((C, H, W), _F)
            v = val if flow_kind else remap(val)[None]
            ft[:, sy, sx] = np.where(m[None], v, 0)
            full.append({"mask": fm, "target": ft})
        out.update(layer_index=L, layers=full, decal=decal_cover)
    return out


class SyntheticUpsampling(Dataset):
    """Endless-looking, fully reproducible synthetic joint-upsampling samples.

    Item ``i`` is a pure function of ``(seed, i)`` (and the constructor arguments): any index can
    be regenerated exactly, in any order, in any worker. Items are dicts: ``image`` float32
    [3, H, W] in [0, 1], ``target`` float32 [C, H, W] (C = 1 disparity-like depth, C = 2 flow
    (u, v) in pixels; 0.0 where invalid), ``valid`` bool [1, H, W], ``name``
    ``"synthetic-{kind}-{seed}-{i}"``. See the module docstring for the scenes.
    """

    def __init__(self, length: int, size: tuple[int, int] = (256, 256), *, kind: str = "depth",
                 seed: int = 0, invalid_fraction: float = 0.02):
        self.length, self.size, self.seed, self.invalid_fraction = _check_args(
            length, size, kind, seed, invalid_fraction)
        self.kind = kind

    def __len__(self) -> int:
        return self.length

    def _index(self, i) -> int:
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"index must be an int, got {type(i).__name__}") from None
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} synthetic items")
        return i

    def _render(self, i: int, debug: bool) -> dict:
        return render_scene(self.seed, i, self.size, self.kind, self.invalid_fraction, debug=debug)

    def __getitem__(self, i) -> dict:
        i = self._index(i)
        r = self._render(i, debug=False)
        return {
            "image": torch.from_numpy(r["image"]),
            "target": torch.from_numpy(r["target"]),
            "valid": torch.from_numpy(r["valid"][None]),
            "name": f"synthetic-{self.kind}-{self.seed}-{i}",
        }

    def scene(self, i) -> dict:
        """Item ``i`` as numpy arrays plus the scene's layers (``render_scene(debug=True)``)."""
        return self._render(self._index(i), debug=True)

    def __repr__(self) -> str:
        return (f"SyntheticUpsampling(length={self.length}, size={self.size}, kind={self.kind!r}, "
                f"seed={self.seed}, invalid_fraction={self.invalid_fraction})")
