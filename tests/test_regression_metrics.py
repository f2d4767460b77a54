"""RMSE / MAE / EPE and the masked loss against hand-computed cases."""

import math

import pytest
import torch

from pixelwise.losses import masked_mse
from pixelwise.metrics import endpoint_error, mae, rmse


def _case():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [6.0, float("inf")]]]])
    valid = torch.tensor([[[[True, True], [True, False]]]])
    return pred, target, valid


def test_rmse_and_mae_hand_computed():
    pred, target, valid = _case()
    # errors on valid pixels: 0, 2, -3
    assert rmse(pred, target, valid).item() == pytest.approx(math.sqrt((0 + 4 + 9) / 3))
    assert mae(pred, target, valid).item() == pytest.approx(5 / 3)


def test_invalid_pixels_never_leak_nan():
    pred, target, valid = _case()
    target[0, 0, 0, 1] = float("nan")
    valid[0, 0, 0, 1] = False
    assert rmse(pred, target, valid).item() == pytest.approx(math.sqrt(9 / 2))


def test_epe_hand_computed():
    pred = torch.zeros(1, 2, 1, 3)
    target = torch.tensor([[[[3.0, 0.0, 9.0]], [[4.0, 1.0, 9.0]]]])
    valid = torch.tensor([[[[True, True, False]]]])
    assert endpoint_error(pred, target, valid).item() == pytest.approx((5 + 1) / 2)


def test_metrics_per_image():
    pred = torch.zeros(2, 1, 1, 2)
    target = torch.tensor([[[[1.0, 1.0]]], [[[2.0, 0.0]]]])
    valid = torch.ones(2, 1, 1, 2, dtype=torch.bool)
    torch.testing.assert_close(rmse(pred, target, valid), torch.tensor([1.0, math.sqrt(2)], dtype=torch.float64))


def test_metric_errors():
    pred, target, valid = _case()
    with pytest.raises(ValueError, match=r"image\(s\) \[0\] have no valid pixel"):
        rmse(pred, target, torch.zeros_like(valid))
    with pytest.raises(ValueError, match="valid: expected a bool"):
        rmse(pred, target, valid.float())
    with pytest.raises(ValueError, match="pred and target"):
        mae(pred, target[..., :1], valid)
    with pytest.raises(ValueError, match="flow needs 2 channels"):
        endpoint_error(pred, target, valid)


def test_masked_mse_hand_computed_and_scaled():
    pred, target, valid = _case()
    pred.requires_grad_(True)
    loss = masked_mse(pred, target, valid)
    assert loss.item() == pytest.approx(13 / 3)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 0, 1, 1] == 0
    assert masked_mse(pred, target, valid, torch.tensor(2.0)).item() == pytest.approx(13 / 12)


def test_masked_mse_without_valid_pixels_is_zero_with_graph():
    pred = torch.ones(1, 1, 2, 2, requires_grad=True)
    loss = masked_mse(pred, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and pred.grad.abs().sum() == 0
