"""Pairwise spherical-embedding loss (Kong & Fowlkes 2018, Eq. 2) with instance weights,
pixel sampling and the recurrent mean-shift wrapper."""

import math

import pytest
import torch

from pixelwise.losses import PixelEmbeddingLoss, instance_weights, pairwise_embedding_loss, sample_pixels
from pixelwise.nn import RecurrentMeanShift


def col(*vectors):
    """Columns -> a (1, D, N) float64 batch."""
    return torch.tensor(vectors, dtype=torch.float64).T[None]


# ---------------------------------------------------------------- instance weights

def test_instance_weights_are_inverse_group_sizes_and_sum_to_one_per_group():
    labels = torch.tensor([3, 3, 3, 0, 255, 7, 7, 0, 255, 3])
    w = instance_weights(labels)
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, torch.tensor([0.25, 0.25, 0.25, 0.5, 0, 0.5, 0.5, 0.5, 0, 0.25]))
    for q in (0, 3, 7):
        assert float(w[labels == q].sum()) == pytest.approx(1.0)
    assert float(w.sum()) == pytest.approx(3.0)
    assert instance_weights(labels, ignore_index=0)[3] == 0


def test_instance_weights_rejects_float_labels():
    with pytest.raises(TypeError, match="labels must have an integer dtype, got torch.float32"):
        instance_weights(torch.zeros(4))


# ---------------------------------------------------------------- the pairwise loss

def test_hand_computed_case():
    # Pixels: a = e1, b = e1 rotated 60 deg, c = -e1, d = e2; labels a, b in group 0, c in 1,
    # d in 2; plus one ignored pixel. Weights 1/2, 1/2, 1, 1. alpha = 0.3 (no pair at the hinge).
    r3 = math.sqrt(3) / 2
    x = col([1, 0], [0.5, r3], [-1, 0], [0, 1], [0.3, -0.2])
    labels = torch.tensor([[0, 0, 1, 2, 255]])
    alpha = 0.3
    # Ordered pairs, both orders counted (factor 2), w_i w_j times the pair loss:
    pos_ab = 2 * 0.25 * (1 - 0.75)  # s = (1 + 0.5) / 2
    neg_ac = 0.0  # s = 0
    neg_ad = 2 * 0.5 * (0.5 - alpha)  # s = 0.5
    neg_bc = 0.0  # cos = -0.5, s = 0.25 < alpha
    neg_bd = 2 * 0.5 * ((1 + r3) / 2 - alpha)
    neg_cd = 2 * 1.0 * (0.5 - alpha)
    total = pos_ab + neg_ac + neg_ad + neg_bc + neg_bd + neg_cd
    assert total == pytest.approx(1.3580127018922193)
    got = pairwise_embedding_loss(x, labels, alpha=alpha)
    assert got.shape == (1,)
    assert float(got) == pytest.approx(total / 3**2)  # Q = 3 groups
    assert float(pairwise_embedding_loss(x, labels, alpha=alpha, normalize="paper")) == pytest.approx(total / 4)
    # Only directions matter.
    scaled = x * torch.tensor([2.0, 0.5, 3, 1, 9])
    assert float(pairwise_embedding_loss(scaled, labels, alpha)) == pytest.approx(total / 9)


def test_zero_loss_for_antipodal_and_orthogonal_instances():
    # 6 instances of various sizes at +-e1, +-e2, +-e3 (the paper's "n groups in n/2 dims"):
    # negative pairs have s in {0, 0.5} <= alpha = 0.5, positive pairs s = 1.
    centres = torch.cat([torch.eye(3), -torch.eye(3)], dim=1).double()
    sizes = [1, 5, 2, 9, 3, 4]
    labels = torch.repeat_interleave(torch.arange(6), torch.tensor(sizes))
    x = centres[:, labels] * torch.linspace(0.5, 3, len(labels), dtype=torch.float64)  # any lengths
    for normalize in ("instances", "paper"):
        assert float(pairwise_embedding_loss(x[None], labels[None], 0.5, normalize=normalize)) < 1e-12


def test_two_instances_sharing_a_vector_pay_the_margin():
    x = col([0, 1, 0], [0, 1, 0], [0, 1, 0])
    loss = pairwise_embedding_loss(x, torch.tensor([[4, 4, 9]]), alpha=0.5)
    # Negative pairs at s = 1 pay 1 - alpha; sum_{i in A, j in B} w_i w_j = 1, both orders: 2 * 0.5 / Q^2.
    assert float(loss) == pytest.approx(2 * 0.5 / 4)


def test_large_and_small_instances_count_the_same():
    # Instance A: 100 pixels at e1, instance B: 10 pixels at e2 (orthogonal: no negative loss at
    # alpha = 0.5). The same error -- half the pixels tilted by +theta towards e3, half by -theta --
    # costs the same whether it hits the large or the small instance.
    theta = 0.4
    e1, e2, e3 = torch.eye(3, dtype=torch.float64)

    def instance(centre, n, err):
        tilt = torch.cat([torch.full((n // 2,), theta), torch.full((n - n // 2,), -theta)]).double() * err
        return torch.cos(tilt)[None] * centre[:, None] + torch.sin(tilt)[None] * e3[:, None]

    labels = torch.cat([torch.zeros(100), torch.ones(10)]).long()[None]

    def loss(err_a, err_b, **kw):
        x = torch.cat([instance(e1, 100, err_a), instance(e2, 10, err_b)], dim=1)[None]
        return float(pairwise_embedding_loss(x, labels, 0.5, **kw))

    assert loss(0, 0) < 1e-12
    expected = 0.5 * (1 - math.cos(2 * theta)) / 2 / 4  # half the pairs off by 2 theta, over Q^2
    assert loss(1, 0) == pytest.approx(expected)
    assert loss(0, 1) == pytest.approx(expected)
    assert loss(1, 0, normalize="paper") == pytest.approx(loss(0, 1, normalize="paper"))


def test_normalisations_differ_by_n_over_q_squared_and_instances_ignores_sample_count():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 30, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 30), generator=g)
    labels[1, :5] = 255
    labels[1, 5:] = torch.arange(25) % 3  # image 1: three groups among 25 labelled pixels
    inst = pairwise_embedding_loss(x, labels)
    paper = pairwise_embedding_loss(x, labels, normalize="paper")
    n = (labels != 255).sum(1).double()
    q = torch.tensor([len(set(r.tolist()) - {255}) for r in labels], dtype=torch.float64)
    torch.testing.assert_close(paper, inst * q**2 / n)
    assert bool(((inst >= 0) & (inst <= 1)).all())
    # Repeating every pixel 3 times leaves the "instances" loss unchanged, divides "paper" by 3.
    x3, l3 = x.repeat(1, 1, 3), labels.repeat(1, 3)
    torch.testing.assert_close(pairwise_embedding_loss(x3, l3), inst)
    torch.testing.assert_close(pairwise_embedding_loss(x3, l3, normalize="paper"), paper / 3)


def test_gradcheck_pairwise_loss():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 12, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 12), generator=g)
    labels[0, 0] = 255
    alpha = 0.37
    xn = torch.nn.functional.normalize(x.detach(), dim=1)
    s = 0.5 * (1 + xn.transpose(1, 2) @ xn)
    assert float((s - alpha).abs().min()) > 1e-3  # no pair at the hinge's kink
    for normalize in ("instances", "paper"):
        assert torch.autograd.gradcheck(lambda x: pairwise_embedding_loss(x, labels, alpha, normalize=normalize), (x,))


@pytest.mark.parametrize("call, exc, match", [
    (lambda x, y: pairwise_embedding_loss(x, y.float()), TypeError, "labels must have an integer dtype"),
    (lambda x, y: pairwise_embedding_loss(x, y[:, :3]), ValueError, r"labels must have shape \(B, N\) = \(1, 4\)"),
    (lambda x, y: pairwise_embedding_loss(x, y, alpha=1.0), ValueError, "alpha must be < 1, got 1"),
    (lambda x, y: pairwise_embedding_loss(x, y, alpha="0.5"), TypeError, "alpha must be a number"),
    (lambda x, y: pairwise_embedding_loss(x, y, normalize="mean"), ValueError, "normalize must be one of"),
    (lambda x, y: pairwise_embedding_loss(x, torch.full_like(y, 255)), ValueError,
     r"labels: image 0 has no labelled pixel \(all ignore_index=255\)"),
    (lambda x, y: pairwise_embedding_loss(x * float("nan"), y), ValueError, "x must be finite.*NaN"),
])
def test_pairwise_loss_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call(torch.randn(1, 3, 4), torch.tensor([[0, 1, 1, 2]]))


# ---------------------------------------------------------------- sampling

def test_sample_pixels_draws_labelled_pixels_without_replacement():
    emb = torch.arange(2 * 2 * 6 * 5, dtype=torch.float32).view(2, 2, 6, 5)  # every value unique
    labels = torch.randint(0, 3, (2, 6, 5), generator=torch.Generator().manual_seed(2))
    labels[0, :4] = 255  # image 0 keeps 10 labelled pixels
    out = sample_pixels(emb, labels, max_pixels=12, generator=torch.Generator().manual_seed(3))
    assert [tuple(x.shape) for x, _ in out] == [(2, 10), (2, 12)]
    for b, (x, y) in enumerate(out):
        flat = emb[b].flatten(1)
        idx = (x[0][:, None] == flat[0][None]).nonzero()[:, 1]  # where each sample came from
        assert len(set(idx.tolist())) == x.shape[1]  # distinct pixels
        assert torch.equal(flat[:, idx], x) and torch.equal(labels[b].flatten()[idx], y)
        assert (y != 255).all()
    again = sample_pixels(emb, labels, max_pixels=12, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(out, again))


def test_sample_pixels_keeps_the_gradient_path():
    emb = torch.randn(1, 3, 4, 4, requires_grad=True)
    (x, _), = sample_pixels(emb, torch.zeros(1, 4, 4, dtype=torch.long), max_pixels=5)
    x.sum().backward()
    assert int((emb.grad != 0).sum()) == 3 * 5


# ---------------------------------------------------------------- the module

def test_module_without_sampling_equals_batch_mean_of_the_function():
    g = torch.Generator().manual_seed(4)
    emb = torch.randn(2, 5, 6, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 6, 6), generator=g)
    loss = PixelEmbeddingLoss(alpha=0.4, max_pixels=36)
    per = loss.per_iteration(emb, labels)
    assert len(per) == 1
    expected = pairwise_embedding_loss(emb.flatten(2), labels.flatten(1), 0.4).mean()
    torch.testing.assert_close(per[0], expected)
    torch.testing.assert_close(loss(emb, labels), expected)


def test_module_with_mean_shift_sums_the_per_iteration_losses():
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 8, 8), generator=g)
    labels[1, :6] = 255  # image 1 has only 16 labelled pixels: different sample sizes
    ms = RecurrentMeanShift(kappa=8.0, iterations=3)
    every = PixelEmbeddingLoss(max_pixels=40, mean_shift=ms)
    per = every.per_iteration(emb, labels, generator=torch.Generator().manual_seed(6))
    assert len(per) == 4 and all(p.dim() == 0 for p in per)
    total = every(emb, labels, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(total, torch.stack(per).sum())
    last = PixelEmbeddingLoss(max_pixels=40, mean_shift=ms, loss_at_every_iteration=False)
    torch.testing.assert_close(last(emb, labels, generator=torch.Generator().manual_seed(6)), per[-1])
    # Manual: sample, run mean shift per image, average the per-image losses.
    samples = sample_pixels(emb, labels, 40, generator=torch.Generator().manual_seed(6))
    manual = torch.stack([pairwise_embedding_loss(ms(x[None])[2], y[None])[0] for x, y in samples]).mean()
    torch.testing.assert_close(per[2], manual)
    total.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0
    assert len(PixelEmbeddingLoss(mean_shift=RecurrentMeanShift(iterations=0)).per_iteration(emb, labels)) == 1


def test_mean_shift_lowers_the_loss_of_noisy_separated_instances():
    # Pixels of 3 instances around orthogonal centres with noise: grouping pulls each instance
    # together, so the per-iteration loss falls towards 0. (alpha = 0.6: at 0.5 orthogonal
    # centres sit exactly on the hinge and any noise in the collapsed centres is paid for.)
    g = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 3, (1, 8, 8), generator=g)
    emb = torch.eye(4, dtype=torch.float64)[:, labels[0]][None] + 0.2 * torch.randn(1, 4, 8, 8, generator=g,
                                                                                     dtype=torch.float64)
    loss = PixelEmbeddingLoss(alpha=0.6, mean_shift=RecurrentMeanShift(kappa=6.0, iterations=4))
    per = loss.per_iteration(emb, labels)
    values = [float(p) for p in per]
    assert values[0] > 0.01
    assert all(b < a for a, b in zip(values, values[1:]))
    assert values[-1] < 1e-8


@pytest.mark.parametrize("emb_shape, labels, exc, match", [
    ((2, 8, 6), torch.zeros(2, 6, 6, dtype=torch.long), ValueError, r"embedding must be 4-D, got shape \(2, 8, 6\)"),
    ((2, 8, 6, 6), torch.zeros(2, 6, 6), TypeError, "labels must have an integer dtype, got torch.float32"),
    ((2, 8, 6, 6), torch.zeros(2, 36, dtype=torch.long), ValueError, "labels must be 3-D"),
    ((2, 64, 32, 32), torch.zeros(2, 64, 64, dtype=torch.long), ValueError,
     r"embedding \(2, 64, 32, 32\) and labels \(2, 64, 64\) must have the same batch and spatial size"),
    ((3, 8, 6, 6), torch.zeros(2, 6, 6, dtype=torch.long), ValueError, "same batch and spatial size"),
])
def test_module_validates_shapes_and_dtypes(emb_shape, labels, exc, match):
    with pytest.raises(exc, match=match):
        PixelEmbeddingLoss()(torch.randn(*emb_shape), labels)


def test_module_rejects_nan_and_unlabelled_images():
    loss = PixelEmbeddingLoss()
    emb = torch.randn(2, 4, 5, 5)
    labels = torch.zeros(2, 5, 5, dtype=torch.long)
    bad = emb.clone()
    bad[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="embedding must be finite, got 1 NaN"):
        loss(bad, labels)
    labels[1] = 255
    with pytest.raises(ValueError, match=r"labels: image 1 has no labelled pixel \(all ignore_index=255\)"):
        loss(emb, labels)
    with pytest.raises(TypeError, match="embedding must have a floating-point dtype"):
        loss(torch.zeros(2, 4, 5, 5, dtype=torch.long), labels)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"alpha": -0.1}, ValueError, "alpha"),
    ({"alpha": True}, TypeError, "alpha must be a number"),
    ({"max_pixels": 0}, ValueError, "max_pixels must be >= 1, got 0"),
    ({"max_pixels": 10.0}, TypeError, "max_pixels must be an int"),
    ({"normalize": "sum"}, ValueError, "normalize must be one of"),
    ({"mean_shift": "gbms"}, TypeError, "mean_shift must be a RecurrentMeanShift or None, got str"),
    ({"loss_at_every_iteration": 1}, TypeError, "loss_at_every_iteration must be a bool"),
])
def test_module_rejects_bad_settings(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PixelEmbeddingLoss(**kwargs)


def test_module_repr_names_its_settings():
    text = repr(PixelEmbeddingLoss(alpha=0.3, mean_shift=RecurrentMeanShift(iterations=2)))
    assert "alpha=0.3" in text and "normalize='instances'" in text and "iterations=2" in text
