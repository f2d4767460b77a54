"""Class weights, label downsampling and the multi-layer weighted cross-entropy (Eq. 5)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelwise.losses.segmentation import (
    class_weights,
    downsample_labels,
    label_frequencies,
    multi_layer_cross_entropy,
)


def naive_head_loss(logits, labels, weight, ignore_index):
    """Eq. 5 for one head, in float64 plain Python: sum_pixels w_y * -log softmax_y / (B*H*W_i)."""
    b, c, h, wi = logits.shape
    factor = labels.shape[-1] // wi
    lg = logits.double().tolist()
    total = 0.0
    for n in range(b):
        for i in range(h):
            for j in range(wi):
                y = int(labels[n, i, j * factor])
                if y == ignore_index:
                    continue
                z = [lg[n][k][i][j] for k in range(c)]
                m = max(z)
                lse = m + math.log(sum(math.exp(x - m) for x in z))
                total += float(weight[y]) * (lse - z[y])
    return total / (b * h * wi)


def test_class_weights_hand_case():
    # f = (0.5, 0.3, 0.15, 0.05), class 0 ignored, eps = 0.05:
    # raw 1/(f+eps) = (-, 1/0.35, 5, 10); sum_{c>0} f_c w_c = 0.3/0.35 + 0.75 + 0.5 = 2.107142857...
    w = class_weights([0.5, 0.3, 0.15, 0.05], eps=0.05)
    assert w.dtype == torch.float32
    s = 0.3 / 0.35 + 0.75 + 0.5
    expected = [0.0, 1 / 0.35 / s, 5 / s, 10 / s]
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    f = np.array([0.5, 0.3, 0.15, 0.05])
    assert float((f[1:] * w.numpy()[1:].astype(np.float64)).sum()) == pytest.approx(1.0, rel=1e-6)
    # counts give the same weights as frequencies
    torch.testing.assert_close(class_weights([50, 30, 15, 5], eps=0.05), w)


def test_class_weights_no_negative_inf_nan():
    for freqs in ([0.9, 0.1, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2] * 5, [1e-12, 0.5, 0.5], [0, 7, 0, 1e6]):
        for eps in (1e-3, 1e-9, 0.5, 10.0):
            for ignore in (0, None):
                w = class_weights(freqs, eps=eps, ignore_index=ignore)
                assert bool(torch.isfinite(w).all()) and bool((w >= 0).all()), (freqs, eps, w)
                if ignore == 0:
                    assert w[0] == 0
    # rarer class -> larger weight; absent classes get the largest, bounded by 1/eps before rescaling
    w = class_weights([0.1, 0.6, 0.3, 0.0])
    assert w[3] > w[2] > w[1] > 0


def test_class_weights_errors():
    with pytest.raises(ValueError, match="frequencies"):
        class_weights([[0.5, 0.5]])
    with pytest.raises(ValueError, match="frequencies"):
        class_weights([0.5, -0.1, 0.6])
    with pytest.raises(ValueError, match="frequencies"):
        class_weights([0.5, float("nan"), 0.5])
    with pytest.raises(ValueError, match="frequencies"):
        class_weights([1.0, 0.0, 0.0])  # all zero once class 0 is ignored
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        class_weights([0.5, 0.5], eps=0.0)
    with pytest.raises(TypeError, match="eps must be a number"):
        class_weights([0.5, 0.5], eps="1e-3")
    with pytest.raises(ValueError, match="ignore_index must be <= 1, got 2"):
        class_weights([0.5, 0.5], ignore_index=2)
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        class_weights([0.5, 0.5], ignore_index=False)


def test_label_frequencies():
    f = label_frequencies([np.array([[0, 1], [1, 3]]), torch.tensor([3, 3, 1, 1])], 4)
    assert f.dtype == np.float64
    np.testing.assert_allclose(f, [1 / 8, 4 / 8, 0.0, 3 / 8])
    np.testing.assert_allclose(label_frequencies(np.array([2, 2, 0]), 3), [1 / 3, 0, 2 / 3])
    np.testing.assert_allclose(label_frequencies([np.array([1.0, 3.0]), np.array([0.0, 4.0])], 2), [0.125, 0.875])
    with pytest.raises(ValueError, match="labels_or_counts"):
        label_frequencies([np.array([0, 4])], 4)
    with pytest.raises(ValueError, match="labels_or_counts"):
        label_frequencies([], 4)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        label_frequencies([np.array([0])], 0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        label_frequencies([np.array([0])], 4.0)


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_downsample_labels_matches_interpolate_nearest(factor):
    labels = torch.randint(0, 20, (2, 5, 64), generator=torch.Generator().manual_seed(factor))
    got = downsample_labels(labels, factor)
    ref = F.interpolate(labels[:, None].float(), size=(5, 64 // factor), mode="nearest")[:, 0].long()
    assert got.shape == (2, 5, 64 // factor)
    assert torch.equal(got, ref)
    assert torch.equal(got, labels[..., ::factor])


def test_downsample_labels_errors():
    with pytest.raises(ValueError, match="factor"):
        downsample_labels(torch.zeros(1, 2, 6, dtype=torch.long), 4)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        downsample_labels(torch.zeros(1, 2, 6, dtype=torch.long), 0)
    with pytest.raises(TypeError, match="factor must be an int"):
        downsample_labels(torch.zeros(1, 2, 6, dtype=torch.long), 2.0)
    with pytest.raises(ValueError, match="labels"):
        downsample_labels(torch.zeros(2, 6, dtype=torch.long), 2)


def _case(seed=0, b=2, c=5, h=3, w=16, widths=(16, 8, 4, 2, 2), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = [torch.randn(b, c, h, wi, generator=g, dtype=dtype) * 3 for wi in widths]
    labels = torch.randint(0, c, (b, h, w), generator=g)
    weight = torch.rand(c, generator=g, dtype=dtype) + 0.1
    return logits, labels, weight


def test_multi_layer_loss_matches_formula():
    logits, labels, weight = _case()
    total, logs = multi_layer_cross_entropy(logits, labels, weight, ignore_index=0)
    heads = [naive_head_loss(lg, labels, weight, 0) for lg in logits]
    assert total.dtype == torch.float64
    assert total.item() == pytest.approx(sum(heads), rel=1e-12, abs=0)
    assert list(logs) == ["loss"] + [f"loss_head{i}" for i in range(5)]
    for i, hl in enumerate(heads):
        assert logs[f"loss_head{i}"] == pytest.approx(hl, rel=1e-12)
    assert logs["loss"] == pytest.approx(sum(heads), rel=1e-12)
    # a single tensor is one head; no weight = weight 1
    t1, logs1 = multi_layer_cross_entropy(logits[0], labels, None, ignore_index=-100)
    assert list(logs1) == ["loss", "loss_head0"]
    assert t1.item() == pytest.approx(naive_head_loss(logits[0], labels, torch.ones(5), -100), rel=1e-12)


def test_float32_close_to_formula():
    logits, labels, weight = _case(seed=3, dtype=torch.float32)
    total, _ = multi_layer_cross_entropy(logits, labels, weight.float())
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(sum(naive_head_loss(lg, labels, weight, 0) for lg in logits), rel=1e-5)


def test_ignored_pixels_contribute_nothing():
    logits, labels, weight = _case(seed=1, widths=(16,))
    labels[:, :, ::2] = 0
    total, _ = multi_layer_cross_entropy(logits, labels, weight)
    # changing logits at ignored pixels changes nothing; the divisor still counts them
    changed = [logits[0].clone()]
    changed[0][..., ::2] = 100.0 * torch.randn_like(changed[0][..., ::2])
    total2, _ = multi_layer_cross_entropy(changed, labels, weight)
    assert total2.item() == total.item()
    naive = naive_head_loss(logits[0], labels, weight, 0)
    assert total.item() == pytest.approx(naive, rel=1e-12)
    all_ignored = torch.zeros_like(labels)
    t0, _ = multi_layer_cross_entropy(logits, all_ignored, weight)
    assert t0.item() == 0.0
    # labels outside [0, C) are fine where they equal ignore_index (e.g. 255)
    labels255 = torch.where(labels == 0, torch.full_like(labels, 255), labels)
    t255, _ = multi_layer_cross_entropy(logits, labels255, weight, ignore_index=255)
    assert t255.item() == pytest.approx(total.item(), rel=1e-12)


def test_gradient_flows_to_every_head():
    logits, labels, weight = _case(seed=2, dtype=torch.float32)
    logits = [lg.requires_grad_() for lg in logits]
    total, _ = multi_layer_cross_entropy(logits, labels, weight.float())
    total.backward()
    for lg in logits:
        assert lg.grad is not None and bool(torch.isfinite(lg.grad).all()) and float(lg.grad.abs().sum()) > 0
    # gradcheck on a tiny case in float64
    small = torch.randn(1, 3, 2, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[[1, 2, 0, 1], [2, 2, 1, 0]]])
    w = torch.tensor([0.0, 1.5, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: multi_layer_cross_entropy([z, z[..., ::2]], y, w)[0], (small,))


def test_multi_layer_errors():
    logits, labels, weight = _case(widths=(16, 5))
    with pytest.raises(ValueError, match="logits"):
        multi_layer_cross_entropy(logits, labels, weight)
    logits, labels, weight = _case(widths=(16,))
    with pytest.raises(ValueError, match="logits"):
        multi_layer_cross_entropy([], labels, weight)
    with pytest.raises(ValueError, match="logits"):
        multi_layer_cross_entropy([logits[0][:, :, :2]], labels, weight)
    with pytest.raises(ValueError, match="logits"):
        multi_layer_cross_entropy([logits[0], torch.randn(2, 4, 3, 8, dtype=torch.float64)], labels, weight)
    with pytest.raises(ValueError, match="labels"):
        multi_layer_cross_entropy(logits, labels.double(), weight)
    with pytest.raises(ValueError, match="labels"):
        multi_layer_cross_entropy(logits, labels + 5, weight)
    with pytest.raises(ValueError, match="weight"):
        multi_layer_cross_entropy(logits, labels, weight[:3])
