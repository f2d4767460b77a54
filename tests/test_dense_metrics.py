"""Depth and surface-normal metrics against hand-computed cases and naive numpy loops."""

import math

import numpy as np
import pytest
import torch

from pixelwise.checks import ShapeError, WrongTypeError
from pixelwise.metrics import DEPTH_METRICS, DepthMetricAccumulator, angular_errors, depth_metrics, normal_metrics


# ---------------------------------------------------------------- depth

def _naive_depth(pred, target, valid):
    d = pred.numpy().astype(np.float64)
    g = target.numpy().astype(np.float64)
    v = valid.numpy()
    acc = {k: 0.0 for k in ("d1", "d2", "d3", "abs", "sq_rel", "sq", "sq_log", "l10")}
    n = 0
    for idx in np.ndindex(*d.shape):
        if not v[idx]:
            continue
        a, b = float(d[idx]), float(g[idx])
        r = max(a / b, b / a)
        acc["d1"] += r < 1.25
        acc["d2"] += r < 1.25 ** 2
        acc["d3"] += r < 1.25 ** 3
        acc["abs"] += abs(a - b) / b
        acc["sq_rel"] += (a - b) ** 2 / b
        acc["sq"] += (a - b) ** 2
        acc["sq_log"] += (math.log(a) - math.log(b)) ** 2
        acc["l10"] += abs(math.log10(a) - math.log10(b))
        n += 1
    return {"delta1": acc["d1"] / n, "delta2": acc["d2"] / n, "delta3": acc["d3"] / n, "abs_rel": acc["abs"] / n,
            "sq_rel": acc["sq_rel"] / n, "rmse": math.sqrt(acc["sq"] / n), "rmse_log": math.sqrt(acc["sq_log"] / n),
            "log10": acc["l10"] / n}


def test_depth_metrics_hand_computed():
    # valid pixels (pred, target):
    #   (1.0, 1.0)  ratio 1.0                          -> delta1, 2, 3
    #   (1.2, 1.0)  ratio 1.2    < 1.25                -> delta1, 2, 3
    #   (2.0, 1.5)  ratio 1.333  in [1.25, 1.5625)     -> delta2, 3
    #   (1.0, 1.9)  ratio 1.9    in [1.5625, 1.953125) -> delta3 only
    # the 5th pixel is invalid and holds 0 / NaN
    pred = torch.tensor([[[[1.0, 1.2, 2.0, 1.0, 0.0]]]])
    target = torch.tensor([[[[1.0, 1.0, 1.5, 1.9, float("nan")]]]])
    valid = torch.tensor([[[[True, True, True, True, False]]]])
    m = depth_metrics(pred, target, valid)
    assert set(m) == set(DEPTH_METRICS)
    assert m["delta1"] == pytest.approx(2 / 4)
    assert m["delta2"] == pytest.approx(3 / 4)
    assert m["delta3"] == pytest.approx(4 / 4)
    # |d - d*| / d* = 0, 0.2, 0.5/1.5, 0.9/1.9
    assert m["abs_rel"] == pytest.approx((0 + 0.2 + 0.5 / 1.5 + 0.9 / 1.9) / 4, rel=1e-6)
    # (d - d*)^2 / d* = 0, 0.04, 0.25/1.5, 0.81/1.9
    assert m["sq_rel"] == pytest.approx((0 + 0.04 + 0.25 / 1.5 + 0.81 / 1.9) / 4, rel=1e-6)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 0.04 + 0.25 + 0.81) / 4), rel=1e-6)
    logs = [0, math.log(1.2), math.log(2 / 1.5), math.log(1 / 1.9)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in logs) / 4), rel=1e-6)
    assert m["log10"] == pytest.approx(sum(abs(x) / math.log(10) for x in logs) / 4, rel=1e-6)


def test_depth_metrics_match_naive_loop_pooled_over_batch():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 5, 6, generator=g) * 9 + 0.5
    pred = target * torch.exp(torch.randn(3, 1, 5, 6, generator=g) * 0.3)
    valid = torch.rand(3, 1, 5, 6, generator=g) > 0.3
    valid[2] = False
    valid[2, 0, 0, 0] = True
    m = depth_metrics(pred, target, valid)
    ref = _naive_depth(pred, target, valid)
    for k in DEPTH_METRICS:
        assert m[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k
    m3 = depth_metrics(pred[:, 0], target[:, 0], valid[:, 0])  # (B, H, W) layout
    assert m3 == pytest.approx(m)


def test_depth_accumulator_pools_pixels_and_merges():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(4, 1, 3, 3, generator=g) + 0.5
    pred = target * torch.exp(torch.randn(4, 1, 3, 3, generator=g) * 0.3)
    valid = torch.rand(4, 1, 3, 3, generator=g) > 0.4
    valid[:, 0, 0, 0] = True
    a, b = DepthMetricAccumulator(), DepthMetricAccumulator()
    a.update(pred[:1], target[:1], valid[:1])
    a.update(pred[1:2], target[1:2], valid[1:2])
    b.update(pred[2:], target[2:], valid[2:])
    assert a.merge(b) is a
    assert a.count == int(valid.sum())
    whole = depth_metrics(pred, target, valid)
    assert a.compute() == pytest.approx(whole, rel=1e-12)
    with pytest.raises(ValueError, match="no valid pixel"):
        DepthMetricAccumulator().compute()
    with pytest.raises(WrongTypeError, match="other"):
        a.merge({})


def test_depth_metrics_errors():
    ones = torch.ones(1, 1, 2, 2)
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_metrics(ones, ones, torch.zeros_like(valid))
    with pytest.raises(ValueError, match="pred must be finite and > 0"):
        depth_metrics(torch.zeros(1, 1, 2, 2), ones, valid)
    with pytest.raises(ValueError, match="target must be finite and > 0"):
        depth_metrics(ones, torch.full((1, 1, 2, 2), float("inf")), valid)
    with pytest.raises(ShapeError, match="pred and target"):
        depth_metrics(ones, torch.ones(1, 1, 2, 3), valid)
    with pytest.raises(WrongTypeError, match="valid must be a bool"):
        depth_metrics(ones, ones, valid.long())
    with pytest.raises(ShapeError, match="valid must have shape"):
        depth_metrics(ones, ones, valid[:, 0])


# ---------------------------------------------------------------- normals

def _naive_angles(pred, target, valid):
    p, t, v = pred.double().numpy(), target.double().numpy(), valid.numpy()
    out = []
    for i in range(p.shape[0]):
        for y in range(p.shape[2]):
            for x in range(p.shape[3]):
                if v[i, y, x]:
                    a, b = p[i, :, y, x], t[i, :, y, x]
                    c = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
                    out.append(math.degrees(math.acos(min(1.0, max(-1.0, c)))))
    return np.array(out)


def test_normal_metrics_hand_computed():
    # target z = (0, 0, 1) everywhere; predictions (unnormalised on purpose):
    #   (0, 0, 5)                  ->  0 degrees
    #   (0, sin 10, cos 10)        -> 10 degrees
    #   (1, 0, 1)                  -> 45 degrees
    #   (0, 1, 0)                  -> 90 degrees
    # mean = 145 / 4 = 36.25, median = (10 + 45) / 2 = 27.5
    # within 11.25: 2/4, within 22.5: 2/4, within 30: 2/4
    s, c = math.sin(math.radians(10)), math.cos(math.radians(10))
    pred = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, s, 0.0, 1.0], [5.0, c, 1.0, 0.0]],
                        dtype=torch.float64).view(1, 3, 1, 4)
    target = torch.zeros(1, 3, 1, 4, dtype=torch.float64)
    target[:, 2] = 1
    valid = torch.ones(1, 1, 4, dtype=torch.bool)
    torch.testing.assert_close(angular_errors(pred, target, valid),
                               torch.tensor([0.0, 10.0, 45.0, 90.0], dtype=torch.float64))
    m = normal_metrics(pred, target, valid)
    assert m["mean"] == pytest.approx(36.25)
    assert m["median"] == pytest.approx(27.5)
    assert (m["within_11.25"], m["within_22.5"], m["within_30"]) == (0.5, 0.5, 0.5)
    # dropping the 90-degree pixel: median of 0, 10, 45 is 10; within 22.5 is 2/3
    valid[0, 0, 3] = False
    m = normal_metrics(pred, target, valid)
    assert m["median"] == pytest.approx(10.0)
    assert m["within_22.5"] == pytest.approx(2 / 3)


def test_normal_metrics_match_naive_loop():
    g = torch.Generator().manual_seed(3)
    target = torch.nn.functional.normalize(torch.randn(2, 3, 4, 5, generator=g), dim=1)
    pred = target + 0.6 * torch.randn(2, 3, 4, 5, generator=g)
    valid = torch.rand(2, 4, 5, generator=g) > 0.3
    pred[:, 0][~valid] = float("nan")  # invalid pixels never leak
    ref = _naive_angles(pred, target, valid)
    m = normal_metrics(pred, target, valid[:, None])
    assert m["mean"] == pytest.approx(ref.mean(), rel=1e-9)
    assert m["median"] == pytest.approx(np.median(ref), rel=1e-9)
    for t in (11.25, 22.5, 30):
        assert m[f"within_{t:g}"] == pytest.approx((ref < t).mean())


def test_normal_metrics_errors():
    x = torch.ones(1, 3, 2, 2)
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="no valid pixel"):
        normal_metrics(x, x, torch.zeros_like(valid))
    with pytest.raises(ShapeError, match=r"pred must be \(B, 3, H, W\)"):
        normal_metrics(torch.ones(1, 2, 2, 2), x, valid)
    with pytest.raises(ShapeError, match="valid must have shape"):
        normal_metrics(x, x, torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(WrongTypeError, match="valid must be a bool"):
        normal_metrics(x, x, valid.float())
    with pytest.raises(ValueError, match="finite"):
        normal_metrics(torch.full((1, 3, 2, 2), float("nan")), x, valid)
