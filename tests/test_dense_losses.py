"""Dense multi-task losses (Kong's thesis, Eqs. 2.2-2.4) against hand-computed cases, naive float64
loops, and gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F

from pixelwise.checks import ShapeError, WrongTypeError
from pixelwise.losses import class_balanced_bce, log_depth_loss, normal_loss, side_output_bce


# ---------------------------------------------------------------- depth

def _naive_log_depth(pred, target, valid, gamma):
    total, n = 0.0, 0
    for idx in zip(*torch.nonzero(valid, as_tuple=True)):
        d = math.log(float(pred[idx])) - math.log(float(target[idx]))
        total += d * d + gamma * abs(d)
        n += 1
    return total / n


def test_log_depth_hand_computed():
    # valid log-ratios: ln(e/1) = 1, ln(1/1) = 0, ln(1/e) = -1; the 4th pixel is invalid (target NaN)
    e = math.e
    pred = torch.tensor([[[[e, 1.0], [1.0, 5.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [e, float("nan")]]]])
    valid = torch.tensor([[[[True, True], [True, False]]]])
    # (1 + 2*1) + 0 + (1 + 2*1) = 6 over 3 pixels
    assert log_depth_loss(pred, target, valid).item() == pytest.approx(2.0)
    assert log_depth_loss(pred, target, valid, gamma=0.0).item() == pytest.approx(2 / 3)


def test_log_depth_matches_naive_loop_and_pools_pixels():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64) + 0.1
    target = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64) + 0.1
    valid = torch.rand(2, 1, 3, 4, generator=g) > 0.3
    valid[1] = False
    valid[1, 0, 0, 0] = True  # image 1 has one pixel: pooled mean, not a mean of image means
    assert log_depth_loss(pred, target, valid, gamma=1.5).item() == pytest.approx(
        _naive_log_depth(pred, target, valid, 1.5), rel=1e-12)
    # (B, H, W) layout gives the same
    assert log_depth_loss(pred[:, 0], target[:, 0], valid[:, 0], gamma=1.5).item() == pytest.approx(
        _naive_log_depth(pred, target, valid, 1.5), rel=1e-12)


def test_log_depth_gradcheck_and_invalid_pixels_get_no_gradient():
    g = torch.Generator().manual_seed(1)
    pred = (torch.rand(1, 1, 3, 3, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    target = pred.detach() * torch.exp(torch.rand(1, 1, 3, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1)
    valid = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    valid[0, 0, 1, 1] = False
    target[0, 0, 1, 1] = float("nan")
    assert torch.autograd.gradcheck(lambda p: log_depth_loss(p, target, valid), (pred,))
    log_depth_loss(pred, target, valid).backward()
    assert pred.grad[0, 0, 1, 1].item() == 0.0
    assert torch.isfinite(pred.grad).all()


def test_log_depth_empty_mask_is_zero_with_graph():
    pred = torch.rand(1, 1, 2, 2, requires_grad=True)
    loss = log_depth_loss(pred, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    # still 0 (not NaN) when the invalid pixels hold NaN
    nan = torch.full((1, 1, 2, 2), float("nan"), requires_grad=True)
    assert log_depth_loss(nan, nan.detach(), torch.zeros(1, 1, 2, 2, dtype=torch.bool)).item() == 0.0


def test_log_depth_errors():
    ones = torch.ones(1, 1, 2, 2)
    valid = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="pred must be > 0"):
        log_depth_loss(torch.zeros(1, 1, 2, 2), ones, valid)
    with pytest.raises(ValueError, match="target must be finite and > 0"):
        log_depth_loss(ones, torch.zeros(1, 1, 2, 2), valid)
    # a non-positive value on an invalid pixel is fine
    v = valid.clone()
    v[0, 0, 0, 0] = False
    z = ones.clone()
    z[0, 0, 0, 0] = 0
    assert log_depth_loss(z, z, v).item() == 0.0
    with pytest.raises(ShapeError, match="pred and target"):
        log_depth_loss(ones, torch.ones(1, 1, 2, 3), valid)
    with pytest.raises(WrongTypeError, match="valid must be a bool"):
        log_depth_loss(ones, ones, valid.float())
    with pytest.raises(ShapeError, match="valid must have shape"):
        log_depth_loss(ones, ones, valid[0])
    with pytest.raises(WrongTypeError, match="pred"):
        log_depth_loss([1.0], ones, valid)
    with pytest.raises(ValueError, match="gamma"):
        log_depth_loss(ones, ones, valid, gamma=-1.0)


# ---------------------------------------------------------------- normals

def _naive_normal(pred, target, valid, lam, eps):
    total, n = 0.0, 0
    b, _, h, w = pred.shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                if not valid[i, y, x]:
                    continue
                p = [float(pred[i, c, y, x]) for c in range(3)]
                norm = math.sqrt(sum(v * v for v in p))
                cos = sum(p[c] / norm * float(target[i, c, y, x]) for c in range(3))
                total += -cos + lam * math.acos(min(max(cos, -1 + eps), 1 - eps))
                n += 1
    return total / n


def _unit(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=1)


def test_normal_loss_hand_computed():
    # pixel 0: pred (0, 0, 2) vs z -> cos 1, clamped acos ~ sqrt(2 eps); pixel 1: x vs z -> cos 0, acos pi/2
    pred = torch.tensor([[0.0, 1.0], [0.0, 0.0], [2.0, 0.0]], dtype=torch.float64).view(1, 3, 1, 2)
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64).view(1, 3, 1, 2)
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    expected = ((-1 + 4 * math.acos(1 - 1e-6)) + (0 + 4 * math.pi / 2)) / 2
    assert normal_loss(pred, target, valid).item() == pytest.approx(expected, rel=1e-12)
    assert normal_loss(pred, target, valid, lam=0.0).item() == pytest.approx(-0.5)


def test_normal_loss_matches_naive_loop():
    pred = torch.randn(2, 3, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target = _unit((2, 3, 3, 2), 3)
    valid = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(4)) > 0.4
    target[:, :, 0, 0][~valid[:, 0, 0]] = float("nan")  # invalid pixels may hold NaN
    assert normal_loss(pred, target, valid, lam=3.0).item() == pytest.approx(
        _naive_normal(pred, target, valid, 3.0, 1e-6), rel=1e-12)
    # a (B, 1, H, W) mask is the same
    assert normal_loss(pred, target, valid[:, None], lam=3.0).item() == pytest.approx(
        _naive_normal(pred, target, valid, 3.0, 1e-6), rel=1e-12)


def test_normal_loss_gradient_finite_at_zero_error():
    target = _unit((1, 3, 2, 2), 5).float()
    pred = target.clone().requires_grad_()
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    normal_loss(pred, target, valid).backward()
    assert torch.isfinite(pred.grad).all()
    # exactly opposite normals (cos = -1) too
    pred = (-target).clone().requires_grad_()
    normal_loss(pred, target, valid).backward()
    assert torch.isfinite(pred.grad).all()
    # the trap the clamp avoids: acos' derivative at exactly 1 is -inf
    x = torch.tensor(1.0, requires_grad=True)
    torch.acos(x).backward()
    assert not torch.isfinite(x.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_normal_loss_half_precision_gradient_finite_at_zero_error(dtype):
    # 1 - 1e-6 rounds to 1 in half precision; the cosine is computed in float32 there
    target = _unit((1, 3, 2, 2), 11).to(dtype)
    pred = target.clone().requires_grad_()
    loss = normal_loss(pred, target, torch.ones(1, 2, 2, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_normal_loss_gradcheck_away_from_clamp():
    target = _unit((1, 3, 2, 2), 6)
    # rotate away from the target so every cosine is well inside (-1 + eps, 1 - eps)
    pred = (target + 0.5 * _unit((1, 3, 2, 2), 7)).requires_grad_()
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    cos = (F.normalize(pred.detach(), dim=1) * target).sum(1)
    assert (cos.abs() < 0.999).all()
    assert torch.autograd.gradcheck(lambda p: normal_loss(p, target, valid), (pred,))


def test_normal_loss_empty_and_errors():
    pred = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.zeros(1, 3, 2, 2)
    loss = normal_loss(pred, target, torch.zeros(1, 2, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    with pytest.raises(ShapeError, match="3 channels"):
        normal_loss(torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2), valid)
    with pytest.raises(ShapeError, match="valid must have shape"):
        normal_loss(pred, target, torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="eps"):
        normal_loss(pred, target, valid, eps=0.0)
    with pytest.raises(ValueError, match="1 - eps < 1 in torch.float32"):
        normal_loss(pred, target, valid, eps=1e-9)
    with pytest.raises(ValueError, match="lam"):
        normal_loss(pred, target, valid, lam=-1)
    with pytest.raises(ShapeError, match="pred must be 4-D"):
        normal_loss(pred[0], target[0], valid)


# ---------------------------------------------------------------- boundaries

def _naive_cb_bce(logits, target, valid):
    per_image = []
    for i in range(logits.shape[0]):
        x = logits[i].flatten().tolist()
        y = target[i].flatten().tolist()
        v = valid[i].flatten().tolist()
        n = sum(v)
        if n == 0:
            per_image.append(0.0)
            continue
        n_neg = sum(1 for yy, vv in zip(y, v) if vv and yy == 0)
        beta = n_neg / n
        s = 0.0
        for xx, yy, vv in zip(x, y, v):
            if not vv:
                continue
            p = 1 / (1 + math.exp(-xx))
            s += -beta * math.log(p) if yy == 1 else -(1 - beta) * math.log(1 - p)
        per_image.append(s / n)
    return sum(per_image) / len(per_image)


def test_class_balanced_bce_hand_computed():
    # 4 pixels, one positive: beta = 3/4. logits 0 -> every term is log 2.
    # (3/4 * log 2 + 3 * 1/4 * log 2) / 4 = 1.5 log 2 / 4
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert class_balanced_bce(logits, target).item() == pytest.approx(1.5 * math.log(2) / 4)
    # an invalid negative changes beta to 2/3: (2/3 log 2 + 2 * 1/3 log 2) / 3
    valid = torch.tensor([[[[True, True], [True, False]]]])
    assert class_balanced_bce(logits, target, valid).item() == pytest.approx(4 / 3 * math.log(2) / 3)
    # bool targets and (B, H, W) layout are accepted
    assert class_balanced_bce(logits[:, 0], target[:, 0].bool()).item() == pytest.approx(1.5 * math.log(2) / 4)


def test_class_balanced_bce_matches_naive_loop_per_image_beta():
    g = torch.Generator().manual_seed(8)
    logits = torch.randn(3, 1, 4, 5, generator=g, dtype=torch.float64)
    target = (torch.rand(3, 1, 4, 5, generator=g) > 0.8).double()
    valid = torch.rand(3, 1, 4, 5, generator=g) > 0.2
    valid[2] = False  # an image with no valid pixel counts as 0
    logits[~valid] = float("nan")  # never leaks
    target[~valid] = 255.0  # an ignore label on invalid pixels is fine
    assert class_balanced_bce(logits, target, valid).item() == pytest.approx(
        _naive_cb_bce(logits, target, valid), rel=1e-12)


def test_class_balanced_bce_gradcheck():
    g = torch.Generator().manual_seed(9)
    logits = torch.randn(2, 1, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(2, 1, 3, 3, generator=g) > 0.6).double()
    assert torch.autograd.gradcheck(lambda x: class_balanced_bce(x, target), (logits,))


def test_class_balanced_bce_errors():
    logits = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="only 0 and 1"):
        class_balanced_bce(logits, torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ShapeError, match="logits and target"):
        class_balanced_bce(logits, torch.zeros(1, 1, 2, 3))
    with pytest.raises(WrongTypeError, match="logits must have a floating-point"):
        class_balanced_bce(logits.long(), logits)
    loss = class_balanced_bce(logits.requires_grad_(), torch.zeros(1, 1, 2, 2),
                              torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad


def test_side_output_bce_sums_upsampled_branches():
    g = torch.Generator().manual_seed(10)
    target = (torch.rand(2, 1, 8, 8, generator=g) > 0.7).float()
    sides = [torch.randn(2, 1, s, s, generator=g) for s in (2, 4, 8, 8)]
    fused = torch.randn(2, 1, 8, 8, generator=g)
    expected = sum(class_balanced_bce(F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False), target)
                   for x in sides) + class_balanced_bce(fused, target)
    torch.testing.assert_close(side_output_bce(sides, fused, target), expected)
    # no side branch: just the fusion term
    torch.testing.assert_close(side_output_bce([], fused, target), class_balanced_bce(fused, target))


def test_side_output_bce_errors():
    target = torch.zeros(1, 1, 4, 4)
    fused = torch.zeros(1, 1, 4, 4)
    with pytest.raises(WrongTypeError, match="side_logits must be a list"):
        side_output_bce(fused, fused, target)
    with pytest.raises(ShapeError, match=r"side_logits\[1\]"):
        side_output_bce([fused, torch.zeros(1, 2, 4, 4)], fused, target)
    with pytest.raises(ShapeError, match="fused_logits"):
        side_output_bce([fused], torch.zeros(2, 1, 4, 4), target)
