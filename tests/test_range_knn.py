"""kNN post-processing (RangeNet++) against a naive per-point loop, hand cases and a real scan; the
default mode and the "reference" mode (RangeNet++'s KNN.py point for point)."""

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.checks import NotAChoiceError
from pixelwise.ops import knn_refine
from pixelwise.ops.range_knn import KNN_MODES, inverse_gaussian_weights, reference_inverse_gaussian_weights

SCAN = Path("/work/shared/data/semantic-kitti/sequences/00/velodyne/000000.bin")
LABEL = Path("/work/shared/data/semantic-kitti/sequences/00/labels/000000.label")


def naive_knn(range_image, pixel_labels, point_range, u, v, *, window=7, k=7, sigma=1.0, cutoff=1.0,
              num_classes=20, ignore_index=0):
    """One point at a time, plain Python floats (float64), the documented rule."""
    rimg = range_image.double().tolist()
    labs = pixel_labels.tolist()
    h, w = len(rimg), len(rimg[0])
    half = window // 2
    total = sum(math.exp(-(a * a + b * b) / (2.0 * sigma * sigma)) for a in range(-half, half + 1)
                for b in range(-half, half + 1))
    out = []
    for pr, uu, vv in zip(point_range.double().tolist(), u.tolist(), v.tolist()):
        cands = []  # (weighted, window index, unweighted, label)
        for a in range(window):
            for b in range(window):
                di, dj = a - half, b - half
                i, j = vv + di, uu + dj
                if di == 0 and dj == 0:
                    r = pr
                elif 0 <= i < h and 0 <= j < w and rimg[i][j] >= 0:
                    r = rimg[i][j]
                else:
                    r = None
                d = math.inf if r is None else abs(r - pr)
                weight = 1.0 - math.exp(-(di * di + dj * dj) / (2.0 * sigma * sigma)) / total
                wd = 0.0 if (di == 0 and dj == 0) else d * weight
                lab = labs[i][j] if (0 <= i < h and 0 <= j < w) else 0
                cands.append((wd, a * window + b, d, lab))
        cands.sort(key=lambda c: (c[0], c[1]))
        votes = [0] * num_classes
        for wd, _, d, lab in cands[:k]:
            if d <= cutoff and lab != ignore_index:
                votes[lab] += 1
        if sum(votes) == 0:
            out.append(labs[vv][uu])
        else:
            out.append(max(range(num_classes), key=lambda c: (votes[c], -c)))
    return torch.tensor(out, dtype=torch.long)


def random_scene(seed, h=8, w=32, n_points=400, num_classes=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # Piecewise ranges with small noise so that many neighbours are within the 1 m cutoff.
    base = torch.randint(2, 8, (h, w), generator=g).double() * 1.5
    rimg = base + 0.3 * torch.rand(h, w, generator=g, dtype=torch.float64)
    rimg[torch.rand(h, w, generator=g) < 0.3] = -1.0
    labels = torch.randint(0, num_classes, (h, w), generator=g)
    occupied = torch.nonzero(rimg >= 0)
    pick = torch.randint(0, occupied.shape[0], (n_points,), generator=g)
    v, u = occupied[pick, 0], occupied[pick, 1]
    # Points at their pixel's range (winners) or behind it / slightly off (collisions).
    pr = rimg[v, u] + torch.where(torch.rand(n_points, generator=g) < 0.5, torch.zeros(n_points, dtype=torch.float64),
                                  3.0 * torch.rand(n_points, generator=g, dtype=torch.float64))
    return rimg.to(dtype), labels, pr.to(dtype), u, v


@pytest.mark.parametrize("window,k", [(7, 7), (3, 1), (3, 9), (5, 4), (1, 1), (7, 20)])
def test_matches_naive_loop(window, k):
    rimg, labels, pr, u, v = random_scene(window * 31 + k)
    got = knn_refine(rimg, labels, pr, u, v, window=window, k=k, num_classes=5, chunk_size=97)
    want = naive_knn(rimg, labels, pr, u, v, window=window, k=k, num_classes=5)
    assert torch.equal(got, want)


def test_matches_naive_loop_other_parameters():
    rimg, labels, pr, u, v = random_scene(5)
    kw = {"window": 5, "k": 6, "sigma": 0.7, "cutoff": 0.4, "num_classes": 5, "ignore_index": 2}
    assert torch.equal(knn_refine(rimg, labels, pr, u, v, **kw), naive_knn(rimg, labels, pr, u, v, **kw))


def test_float32_agrees_with_float64():
    rimg, labels, pr, u, v = random_scene(11)
    a = knn_refine(rimg, labels, pr, u, v, num_classes=5)
    b = knn_refine(rimg.float(), labels, pr.float(), u, v, num_classes=5)
    assert a.dtype == torch.long and torch.equal(a, b)


def test_chunk_size_does_not_matter():
    rimg, labels, pr, u, v = random_scene(3)
    a = knn_refine(rimg, labels, pr, u, v, num_classes=5, chunk_size=1)
    b = knn_refine(rimg, labels, pr, u, v, num_classes=5, chunk_size=10**6)
    assert torch.equal(a, b)


def test_wrong_pixel_label_is_outvoted():
    rimg = torch.full((5, 5), -1.0)
    labels = torch.zeros(5, 5, dtype=torch.long)
    # Six same-range neighbours of class 3 around the centre, whose own label is a wrong 7.
    for i, j in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 2)]:
        rimg[i, j] = 10.0
        labels[i, j] = 3
    rimg[2, 2], labels[2, 2] = 10.0, 7
    out = knn_refine(rimg, labels, torch.tensor([10.0]), torch.tensor([2]), torch.tensor([2]), num_classes=8)
    assert out.tolist() == [3]


def test_neighbour_beyond_cutoff_does_not_vote():
    rimg = torch.full((3, 3), -1.0)
    labels = torch.zeros(3, 3, dtype=torch.long)
    rimg[1, 1], labels[1, 1] = 5.0, 2
    # Three neighbours of class 4, but 1.5 m away: beyond the 1 m cutoff.
    for j in range(3):
        rimg[0, j], labels[0, j] = 6.5, 4
    out = knn_refine(rimg, labels, torch.tensor([5.0]), torch.tensor([1]), torch.tensor([1]),
                     window=3, k=9, num_classes=5)
    assert out.tolist() == [2]
    # With a 2 m cutoff they win 3 votes to 1.
    out = knn_refine(rimg, labels, torch.tensor([5.0]), torch.tensor([1]), torch.tensor([1]),
                     window=3, k=9, cutoff=2.0, num_classes=5)
    assert out.tolist() == [4]


def test_no_valid_vote_keeps_pixel_label():
    rimg = torch.tensor([[4.0, -1.0, 9.0], [20.0, 4.0, -1.0]])
    labels = torch.tensor([[1, 0, 2], [2, 3, 1]])
    # Point behind pixel (1,1) at 30 m: every neighbour and the centre's own label (3, at distance 0)...
    # the centre always votes, so use ignore_index=3 to leave the point without any vote.
    out = knn_refine(rimg, labels, torch.tensor([30.0]), torch.tensor([1]), torch.tensor([1]),
                     window=3, k=9, num_classes=4, ignore_index=3)
    assert out.tolist() == [3]
    # A point whose pixel is labelled with the ignored class and has no other voter keeps 0.
    rimg = torch.tensor([[50.0, -1.0], [-1.0, 8.0]])
    labels = torch.tensor([[1, 0], [0, 0]])
    out = knn_refine(rimg, labels, torch.tensor([8.0]), torch.tensor([1]), torch.tensor([1]), window=3, k=9,
                     num_classes=2)
    assert out.tolist() == [0]


def test_ties_go_to_lowest_class():
    rimg = torch.full((1, 3), 5.0)
    labels = torch.tensor([[2, 0, 1]])
    out = knn_refine(rimg, labels, torch.tensor([5.0]), torch.tensor([1]), torch.tensor([0]), window=3, k=9,
                     num_classes=3)
    assert out.tolist() == [1]


def test_image_corners():
    rimg, labels, _, _, _ = random_scene(7, h=6, w=9)
    rimg[0, 0] = rimg[0, -1] = rimg[-1, 0] = rimg[-1, -1] = 3.0
    v = torch.tensor([0, 0, 5, 5, 0, 5])
    u = torch.tensor([0, 8, 0, 8, 0, 8])
    pr = torch.tensor([3.0, 3.0, 3.0, 3.0, 12.0, 3.2], dtype=torch.float64)
    for window, k in [(7, 7), (5, 25), (3, 3)]:
        got = knn_refine(rimg, labels, pr, u, v, window=window, k=k, num_classes=5)
        assert torch.equal(got, naive_knn(rimg, labels, pr, u, v, window=window, k=k, num_classes=5))


def test_empty_point_set():
    out = knn_refine(torch.ones(2, 2), torch.zeros(2, 2, dtype=torch.long), torch.zeros(0),
                     torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    assert out.shape == (0,) and out.dtype == torch.long


@pytest.mark.parametrize("kwargs,exc,name", [
    ({"window": 4}, ValueError, "window must be odd"), ({"window": 0}, ValueError, "window must be >= 1"),
    ({"window": 3.0}, TypeError, "window must be an int"), ({"k": 0}, ValueError, "k must be >= 1"),
    ({"window": 3, "k": 10}, ValueError, "k must be <= 9"), ({"k": True}, TypeError, "k must be an int"),
    ({"sigma": 0.0}, ValueError, "sigma must be > 0"), ({"sigma": float("inf")}, ValueError, "sigma must be finite"),
    ({"cutoff": 0.0}, ValueError, "cutoff must be > 0"), ({"cutoff": -1.0}, ValueError, "cutoff"),
    ({"cutoff": float("nan")}, ValueError, "cutoff"), ({"cutoff": "1"}, TypeError, "cutoff must be a number"),
    ({"num_classes": 3}, ValueError, "pixel_labels"), ({"num_classes": 5.0}, TypeError, "num_classes"),
    ({"ignore_index": None}, TypeError, "ignore_index must be an int"),
    ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
])
def test_bad_arguments(kwargs, exc, name):
    rimg, labels, pr, u, v = random_scene(1, h=4, w=6, n_points=10)
    with pytest.raises(exc, match=name):
        knn_refine(rimg, labels, pr, u, v, **{"num_classes": 5, **kwargs})


def test_infinite_cutoff_disables_the_cutoff():
    rimg, labels, pr, u, v = random_scene(1, h=4, w=6, n_points=10)
    big = knn_refine(rimg, labels, pr, u, v, num_classes=5, cutoff=1e30)
    assert torch.equal(knn_refine(rimg, labels, pr, u, v, num_classes=5, cutoff=float("inf")), big)


def test_bad_tensors():
    rimg, labels, pr, u, v = random_scene(1, h=4, w=6, n_points=10)
    with pytest.raises(ValueError, match="u"):
        knn_refine(rimg, labels, pr, u + 6, v, num_classes=5)
    with pytest.raises(ValueError, match="v"):
        knn_refine(rimg, labels, pr, u, v - 1 - v.max(), num_classes=5)
    with pytest.raises(ValueError, match="pixel_labels"):
        knn_refine(rimg, labels[:, :3], pr, u, v, num_classes=5)
    with pytest.raises(ValueError, match="range_image"):
        knn_refine(rimg[0], labels, pr, u, v, num_classes=5)
    with pytest.raises(ValueError, match="u"):
        knn_refine(rimg, labels, pr, u[:3], v, num_classes=5)
    with pytest.raises(ValueError, match="point_range"):
        knn_refine(rimg, labels, pr.float(), u, v, num_classes=5)


def _project(points, h=64, w=2048, fov_up=3.0, fov_down=-25.0):
    x, y, z = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64), points[:, 2].astype(np.float64)
    r = np.sqrt(x * x + y * y + z * z)
    keep = r > 0
    yaw = np.arctan2(y, x)
    pitch = np.arcsin(np.clip(z / np.where(keep, r, 1.0), -1.0, 1.0))
    fov = math.radians(abs(fov_up) + abs(fov_down))
    u = np.clip(np.floor(0.5 * (1.0 - yaw / np.pi) * w), 0, w - 1).astype(np.int64)
    v = np.clip(np.floor((1.0 - (pitch + math.radians(abs(fov_down))) / fov) * h), 0, h - 1).astype(np.int64)
    rimg = np.full((h, w), -1.0)
    owner = np.full((h, w), -1, dtype=np.int64)
    order = np.argsort(-r, kind="stable")  # far to near: the closest point writes last and wins
    rimg[v[order], u[order]] = r[order]
    owner[v[order], u[order]] = order
    return r, u, v, rimg, owner


@pytest.mark.skipif(not (SCAN.exists() and LABEL.exists()), reason="SemanticKITTI sample not available")
def test_real_scan():
    pts = np.fromfile(SCAN, dtype=np.float32).reshape(-1, 4)
    raw = np.fromfile(LABEL, dtype=np.uint32) & 0xFFFF
    assert raw.shape[0] == pts.shape[0]
    point_labels = (raw % 20).astype(np.int64)
    r, u, v, rimg, owner = _project(pts)
    pix = np.zeros(rimg.shape, dtype=np.int64)
    pix[owner >= 0] = point_labels[owner[owner >= 0]]
    t_rimg, t_pix = torch.from_numpy(rimg).float(), torch.from_numpy(pix)
    t_r, t_u, t_v = torch.from_numpy(r).float(), torch.from_numpy(u), torch.from_numpy(v)
    t0 = time.perf_counter()
    out = knn_refine(t_rimg, t_pix, t_r, t_u, t_v)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0
    n = pts.shape[0]
    assert out.shape == (n,) and out.dtype == torch.long
    assert int(out.min()) >= 0 and int(out.max()) < 20
    # Winners whose 7x7 neighbourhood (occupied pixels and out-of-image ignored) carries one label.
    tp = torch.from_numpy(np.where(owner >= 0, pix, -1))
    padded = torch.nn.functional.pad(tp, (3, 3, 3, 3), value=-1).float()[None, None]
    win = torch.nn.functional.unfold(padded, 7)[0].T.reshape(64, 2048, 49).long()
    occ = win >= 0
    lo = torch.where(occ, win, torch.full_like(win, 99)).min(-1).values
    hi = torch.where(occ, win, torch.full_like(win, -1)).max(-1).values
    homogeneous = (lo == hi).numpy()
    winners = owner[v, u] == np.arange(n)
    sel = winners & homogeneous[v, u]
    assert sel.sum() > 10000
    assert torch.equal(out[torch.from_numpy(sel)], t_pix[t_v, t_u][torch.from_numpy(sel)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rimg, labels, pr, u, v = random_scene(21)
    cpu = knn_refine(rimg.float(), labels, pr.float(), u, v, num_classes=5, chunk_size=64)
    gpu = knn_refine(rimg.float().cuda(), labels.cuda(), pr.float().cuda(), u.cuda(), v.cuda(), num_classes=5,
                     chunk_size=64)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


# ---------------------------------------------------------------------------------------------
# mode="reference": RangeNet++'s KNN.py, point for point.


def reference_weights(window, sigma):
    """The reference's float32 inverse Gaussian (1 - G / sum(G)), written out from its definition.

    Grid 0..window-1 in float32, mean (window-1)/2, variance sigma^2,
    G = 1 / (2 pi variance) * exp(-((x - mean)^2 + (y - mean)^2) / (2 variance)), normalised.
    The float32 exp and sum are torch's CPU kernels, which the reference uses: numpy's float32 exp
    differs from torch's in the last bit for some entries (see test_reference_weights).
    """
    c = np.arange(window, dtype=np.float32)
    mean = np.float32((window - 1) / 2)
    sq = (c[:, None] - mean) ** 2 + (c[None, :] - mean) ** 2  # exact (small half-integers)
    arg = -sq / np.float32(2.0 * sigma**2)
    g = np.float32(1.0 / (2.0 * math.pi * sigma**2)) * torch.exp(torch.from_numpy(arg)).numpy()
    g = g / torch.from_numpy(g).sum().numpy()
    return (np.float32(1.0) - g).reshape(-1)


def naive_reference_knn(range_image, pixel_labels, point_range, u, v, *, window=7, k=7, sigma=1.0, cutoff=1.0,
                        num_classes=20):
    """One point at a time, the facts of the reference, in the image's dtype (numpy scalars).

    Zero padding (range 0, label 0 outside the image); inside, negative ranges are inf; centre at
    the point's own range; distance |r - r_p| * weight; the k smallest (ties: lower window index);
    weighted distance > cutoff does not vote when cutoff > 0; votes for 0 never count; argmax over
    1..C-1 (ties to the lowest id), so no vote gives class 1.
    """
    dt = np.float32 if range_image.dtype == torch.float32 else np.float64
    rimg = range_image.numpy()
    labs = pixel_labels.numpy()
    h, w = rimg.shape
    half = window // 2
    weights = reference_weights(window, sigma).astype(dt)
    cut = dt(cutoff)  # torch compares a tensor with a Python number in the tensor's dtype
    out = []
    for pr, uu, vv in zip(point_range.numpy(), u.tolist(), v.tolist()):
        cands = []  # (weighted distance, window index, label)
        for a in range(window):
            for b in range(window):
                i, j = vv + a - half, uu + b - half
                inside = 0 <= i < h and 0 <= j < w
                if a == half and b == half:
                    r = pr
                elif not inside:
                    r = dt(0.0)
                elif rimg[i, j] < 0:
                    r = dt(np.inf)
                else:
                    r = rimg[i, j]
                wd = dt(abs(dt(r) - pr)) * weights[a * window + b]
                cands.append((wd, a * window + b, int(labs[i, j]) if inside else 0))
        cands.sort(key=lambda c: (c[0], c[1]))
        votes = [0] * num_classes
        for wd, _, lab in cands[:k]:
            if cutoff > 0 and wd > cut:
                continue
            votes[lab] += 1
        out.append(max(range(1, num_classes), key=lambda c: (votes[c], -c)))
    return torch.tensor(out, dtype=torch.long)


def vectorised_reference_knn(range_image, pixel_labels, point_range, u, v, *, window=7, k=7, sigma=1.0,
                             cutoff=1.0, num_classes=20):
    """The same facts as :func:`naive_reference_knn`, vectorised over points with numpy (one pass per
    window position, out-of-image positions found by bounds checks, not by padding)."""
    rimg, labs = range_image.numpy(), pixel_labels.numpy()
    pr, uu, vv = point_range.numpy(), u.numpy(), v.numpy()
    dt = rimg.dtype.type
    h, w = rimg.shape
    half = window // 2
    weights = reference_weights(window, sigma).astype(dt)
    n = len(pr)
    wd = np.empty((n, window * window), dtype=dt)
    lab = np.empty((n, window * window), dtype=np.int64)
    for a in range(window):
        for b in range(window):
            col = a * window + b
            i, j = vv + a - half, uu + b - half
            inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
            ic, jc = np.clip(i, 0, h - 1), np.clip(j, 0, w - 1)
            r = np.where(inside, rimg[ic, jc], dt(0.0))
            r = np.where(inside & (r < 0), dt(np.inf), r)
            if a == half and b == half:
                r = pr
            wd[:, col] = np.abs(r - pr) * weights[col]
            lab[:, col] = np.where(inside, labs[ic, jc], 0)
    order = np.argsort(wd, axis=1, kind="stable")[:, :k]
    sel_wd, sel_lab = np.take_along_axis(wd, order, 1), np.take_along_axis(lab, order, 1)
    ok = sel_lab != 0
    if cutoff > 0:
        ok &= ~(sel_wd > dt(cutoff))
    votes = np.zeros((n, num_classes), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), sel_lab.reshape(-1)), ok.reshape(-1).astype(np.int64))
    return torch.from_numpy(votes[:, 1:].argmax(axis=1) + 1)


def reference_scene(seed, h=6, w=20, n_points=300, num_classes=5, dtype=torch.float32):
    """Ranges on a 0.25 m grid (exact ties) for half the pixels, off it for the others (distances
    between the weighted and the unweighted cutoff), many near 0 (zero padding within the cutoff),
    empty pixels, label 0 frequent, points on every border and some on empty pixels."""
    g = torch.Generator().manual_seed(seed)
    rimg = torch.randint(1, 12, (h, w), generator=g).double() * 0.25
    off_grid = 0.25 * torch.rand(h, w, generator=g, dtype=torch.float64)
    rimg += torch.where(torch.rand(h, w, generator=g) < 0.5, 0.0, off_grid)
    rimg[torch.rand(h, w, generator=g) < 0.3] = -1.0
    labels = torch.randint(0, num_classes, (h, w), generator=g)
    v = torch.randint(0, h, (n_points,), generator=g)
    u = torch.randint(0, w, (n_points,), generator=g)
    v[:20], u[20:40] = 0, w - 1  # borders
    pr = rimg[v, u].clamp(min=0.25) + 0.25 * torch.randint(0, 8, (n_points,), generator=g)
    pr[-30:] = 0.5 * torch.rand(30, generator=g, dtype=torch.float64) + 0.05  # close points: padding in reach
    return rimg.to(dtype), labels, pr.to(dtype), u, v


def test_knn_modes():
    assert KNN_MODES == ("default", "reference")


@pytest.mark.parametrize("window,sigma", [(7, 1.0), (3, 0.7), (5, 2.0), (9, 0.5), (1, 1.0)])
def test_reference_weights(window, sigma):
    ref = reference_inverse_gaussian_weights(window, sigma)
    assert ref.dtype == torch.float32 and ref.shape == (window * window,)
    np.testing.assert_array_equal(ref.numpy(), reference_weights(window, sigma))
    # the same weights as the default mode's float64 ones, up to float32 rounding; and as an
    # all-numpy float32 computation up to numpy's exp (not bit for bit in general)
    np.testing.assert_allclose(ref.double().numpy(), inverse_gaussian_weights(window, sigma).numpy(), rtol=0, atol=2e-7)
    c = np.arange(window, dtype=np.float32)
    sq = (c[:, None] - np.float32((window - 1) / 2)) ** 2 + (c[None, :] - np.float32((window - 1) / 2)) ** 2
    gn = np.exp(-sq / np.float32(2 * sigma**2))
    np.testing.assert_allclose(ref.numpy(), (np.float32(1) - gn / gn.sum()).reshape(-1), rtol=0, atol=2e-7)
    assert reference_inverse_gaussian_weights(window, sigma, dtype=torch.float64).dtype == torch.float64


def test_naive_and_vectorised_reference_oracles_agree():
    for seed in range(3):
        rimg, labels, pr, u, v = reference_scene(100 + seed)
        for kw in ({"window": 7, "k": 7, "cutoff": 1.0}, {"window": 3, "k": 9, "cutoff": 0.0}):
            a = naive_reference_knn(rimg, labels, pr, u, v, num_classes=5, **kw)
            b = vectorised_reference_knn(rimg, labels, pr, u, v, num_classes=5, **kw)
            assert torch.equal(a, b)


@pytest.mark.parametrize("window,k,sigma,cutoff", [
    (7, 7, 1.0, 1.0), (3, 1, 1.0, 1.0), (3, 9, 0.7, 0.5), (5, 4, 2.0, 0.75), (1, 1, 1.0, 1.0), (7, 20, 1.0, 2.0),
    (5, 12, 1.0, 0.0), (3, 9, 1.0, -1.0), (5, 25, 1.0, float("inf")), (7, 7, 1.3, 0.3),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reference_matches_naive_loop(window, k, sigma, cutoff, dtype):
    rimg, labels, pr, u, v = reference_scene(window * 31 + k, dtype=dtype)
    kw = {"window": window, "k": k, "sigma": sigma, "cutoff": cutoff, "num_classes": 5}
    got = knn_refine(rimg, labels, pr, u, v, mode="reference", chunk_size=61, **kw)
    assert got.dtype == torch.long
    assert torch.equal(got, naive_reference_knn(rimg, labels, pr, u, v, **kw))


def test_reference_scene_hits_the_cases():
    """The random scenes do exercise the cutoff, the zero padding and the class-1 fallback."""
    rimg, labels, pr, u, v = reference_scene(7 * 31 + 7)
    d = vectorised_reference_knn(rimg, labels, pr, u, v, num_classes=5)
    big = vectorised_reference_knn(rimg, labels, pr, u, v, num_classes=5, cutoff=0.0)
    assert (d != big).any()  # the cutoff changes some points
    own = labels[v, u]
    assert ((own == 0) & (d == 1)).any()  # fallback to class 1 on a pixel labelled 0
    # Padding positions of a close border point within the cutoff take one of the k places.
    close = (pr < 0.6) & ((v == 0) | (v == 5) | (u == 0) | (u == 19))
    assert close.any()
    default = knn_refine(rimg, labels, pr, u, v, num_classes=5)
    assert (default != d).any()


def test_reference_chunk_size_does_not_matter():
    rimg, labels, pr, u, v = reference_scene(3)
    a = knn_refine(rimg, labels, pr, u, v, num_classes=5, chunk_size=1, mode="reference")
    b = knn_refine(rimg, labels, pr, u, v, num_classes=5, chunk_size=10**6, mode="reference")
    assert torch.equal(a, b)


def test_modes_differ_fallback_and_weighted_cutoff():
    # Two points on a pixel labelled 0 among neighbours at 8 m labelled 2 (window 3, sigma 1: the
    # side neighbours' weight is 1 - exp(-1/2) / (1 + 4 exp(-1/2) + 4 exp(-1)) = 0.8762).
    rimg, labels = torch.tensor([[8.0, 8.0, 8.0]]), torch.tensor([[2, 0, 2]])
    u, v = torch.tensor([1, 1, 1]), torch.tensor([0, 0, 0])
    # 12 m: nothing within 1 m (the zero padding is 12 m away) -> default keeps 0, reference gives 1.
    # 9.1 m: neighbours 1.1 m away, 0.964 m weighted -> default: beyond the cutoff, keeps 0;
    #        reference: within it, 2 votes for class 2.
    # 8.95 m: 0.95 m, within both cutoffs -> 2 in both modes.
    pr = torch.tensor([12.0, 9.1, 8.95])
    assert knn_refine(rimg, labels, pr, u, v, window=3, k=9, num_classes=3).tolist() == [0, 0, 2]
    assert knn_refine(rimg, labels, pr, u, v, window=3, k=9, num_classes=3, mode="reference").tolist() == [1, 2, 2]
    # The pixel labelled 1 itself is not special: all votes for 0 in a 4-class problem -> class 1.
    lab0 = torch.zeros(1, 3, dtype=torch.long)
    assert knn_refine(rimg, lab0, pr, u, v, window=3, k=9, num_classes=4, mode="reference").tolist() == [1, 1, 1]
    assert knn_refine(rimg, lab0, pr, u, v, window=3, k=9, num_classes=4).tolist() == [0, 0, 0]


def test_modes_differ_zero_padding():
    # Point at 0.5 m on the left border of a 1x3 image. Reference: the padding (range 0) is 0.5 m
    # away, 0.438 weighted (side) or 0.462 (corner), nearer than the 1.2 m pixel (0.7 * 0.876 = 0.613):
    # k=3 takes the centre and two side paddings (window indices 1 and 3, ties by index); they vote
    # 0, discarded, so the centre's 3 wins. Default: the padding is empty; the centre (3) and the
    # pixel (2) vote, a tie that goes to the lowest id, 2.
    rimg, labels = torch.tensor([[0.5, 1.2, 1.2]]), torch.tensor([[3, 2, 2]])
    args = (rimg, labels, torch.tensor([0.5]), torch.tensor([0]), torch.tensor([0]))
    assert knn_refine(*args, window=3, k=3, num_classes=4, mode="reference").tolist() == [3]
    assert knn_refine(*args, window=3, k=3, num_classes=4).tolist() == [2]
    assert naive_reference_knn(*args, window=3, k=3, num_classes=4).tolist() == [3]


def test_reference_without_cutoff_lets_empty_pixels_vote():
    # Centre at 5 m labelled 1 between two empty pixels labelled 2, window 3 over a 1x3 image: six
    # padding positions (vote 0), two empty pixels (distance inf), the centre. k=9 selects all.
    rimg, labels = torch.tensor([[-1.0, 5.0, -1.0]]), torch.tensor([[2, 1, 2]])
    args = (rimg, labels, torch.tensor([5.0]), torch.tensor([1]), torch.tensor([0]))
    kw = {"window": 3, "k": 9, "num_classes": 3}
    assert knn_refine(*args, **kw, cutoff=1.0, mode="reference").tolist() == [1]
    for cutoff in (0.0, -2.0, float("inf")):  # no cutoff: inf distances vote, 2 votes to 1
        assert knn_refine(*args, **kw, cutoff=cutoff, mode="reference").tolist() == [2]
    assert knn_refine(*args, **kw, cutoff=float("inf")).tolist() == [1]  # default: empty never votes


def test_reference_nan_is_empty():
    rimg, labels, pr, u, v = reference_scene(9)
    nan = rimg.clone()
    nan[nan < 0] = float("nan")
    for cutoff in (1.0, 0.0):
        a = knn_refine(rimg, labels, pr, u, v, num_classes=5, cutoff=cutoff, mode="reference")
        assert torch.equal(knn_refine(nan, labels, pr, u, v, num_classes=5, cutoff=cutoff, mode="reference"), a)


def test_default_mode_unchanged_by_mode_argument():
    rimg, labels, pr, u, v = random_scene(13)
    a = knn_refine(rimg, labels, pr, u, v, num_classes=5)
    assert torch.equal(knn_refine(rimg, labels, pr, u, v, num_classes=5, mode="default"), a)
    assert torch.equal(a, naive_knn(rimg, labels, pr, u, v, num_classes=5))


@pytest.mark.parametrize("kwargs,exc,name", [
    ({"mode": "rangenet"}, NotAChoiceError, "mode must be one of default, reference; got 'rangenet'"),
    ({"mode": None}, NotAChoiceError, "mode"),
    ({"mode": "reference", "ignore_index": 3}, ValueError, "ignore_index must be 0 with mode='reference'"),
    ({"mode": "reference", "ignore_index": 0.0}, TypeError, "ignore_index must be an int"),
    ({"mode": "reference", "cutoff": float("nan")}, ValueError, "cutoff"),
    ({"mode": "reference", "cutoff": "1"}, TypeError, "cutoff must be a number"),
    ({"mode": "reference", "sigma": 0.0}, ValueError, "sigma must be > 0"),
    ({"mode": "reference", "sigma": 1e-30}, ValueError, "sigma"),
    ({"mode": "reference", "window": 3, "k": 10}, ValueError, "k must be <= 9"),
    ({"cutoff": 0.0}, ValueError, "cutoff must be > 0"),  # default mode: a cutoff is required
])
def test_reference_bad_arguments(kwargs, exc, name):
    rimg, labels, pr, u, v = random_scene(1, h=4, w=6, n_points=10)
    with pytest.raises(exc, match=name):
        knn_refine(rimg, labels, pr, u, v, **{"num_classes": 5, **kwargs})
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        knn_refine(rimg, labels.clamp(max=0), pr, u, v, num_classes=1, mode="reference")


def _real_scan_64x512():
    from pixelwise.data.datasets.semantic_kitti import LabelMap
    from pixelwise.data.io.semantic_kitti import read_label, read_scan
    from pixelwise.data.transforms.spherical_projection import ProjectionConfig, project, project_labels

    points = read_scan(SCAN)
    semantic, _ = read_label(LABEL, len(points))
    truth = LabelMap.default().to_train(semantic)
    image = project(points, ProjectionConfig(64, 512))
    pix = project_labels(truth, image, fill=0)
    # A network-like prediction: 10% of the pixels (empty ones included) relabelled at random.
    rng = np.random.default_rng(0)
    noisy = rng.random(pix.shape) < 0.1
    pix[noisy] = rng.integers(0, 20, size=int(noisy.sum()))
    return (torch.from_numpy(image.channels[0]), torch.from_numpy(pix), torch.from_numpy(image.point_range),
            torch.from_numpy(image.u), torch.from_numpy(image.v))


@pytest.mark.skipif(not (SCAN.exists() and LABEL.exists()), reason="SemanticKITTI sample not available")
def test_real_scan_reference_mode_matches_oracle():
    rimg, pix, pr, u, v = _real_scan_64x512()
    assert rimg.dtype == pr.dtype == torch.float32 and len(pr) > 100_000 and bool((rimg < 0).any())
    for kw in ({}, {"window": 5, "k": 9, "cutoff": 0.0}):
        got = knn_refine(rimg, pix, pr, u, v, mode="reference", **kw)
        want = vectorised_reference_knn(rimg, pix, pr, u, v, **kw)  # every point of the scan
        assert torch.equal(got, want)
        assert int(got.min()) >= 1 and int(got.max()) < 20
    # a few thousand points against the naive per-point loop as well
    sel = torch.from_numpy(np.random.default_rng(1).choice(len(pr), 2000, replace=False))
    assert torch.equal(got[sel], naive_reference_knn(rimg, pix, pr[sel], u[sel], v[sel], window=5, k=9, cutoff=0.0))
    # the reference's 1 m cutoff on weighted distances differs from ours somewhere on a real scan
    assert (knn_refine(rimg, pix, pr, u, v, mode="reference") != knn_refine(rimg, pix, pr, u, v)).any()


@pytest.mark.skipif(not (SCAN.exists() and LABEL.exists()), reason="SemanticKITTI sample not available")
def test_real_scan_default_mode_matches_naive_loop():
    rimg, pix, pr, u, v = _real_scan_64x512()
    rimg, pr = rimg.double(), pr.double()  # the naive loop computes in float64
    sel = torch.from_numpy(np.random.default_rng(2).choice(len(pr), 3000, replace=False))
    got = knn_refine(rimg, pix, pr, u, v)
    assert torch.equal(got[sel], naive_knn(rimg, pix, pr[sel], u[sel], v[sel]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_reference_matches_cpu():
    rimg, labels, pr, u, v = reference_scene(21, h=16, w=64, n_points=3000)
    for cutoff in (1.0, 0.0):
        cpu = knn_refine(rimg, labels, pr, u, v, num_classes=5, chunk_size=256, cutoff=cutoff, mode="reference")
        gpu = knn_refine(rimg.cuda(), labels.cuda(), pr.cuda(), u.cuda(), v.cuda(), num_classes=5, chunk_size=256,
                         cutoff=cutoff, mode="reference")
        assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
