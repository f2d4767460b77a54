"""kNN post-processing (RangeNet++) against a naive per-point loop, hand cases and a real scan."""

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelwise.ops import knn_refine

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
