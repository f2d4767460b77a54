"""Recurrent mean shift (GBMS) of Kong & Fowlkes 2018: per-point references, gradients, dynamics,
and the supplement's 1-D toy example (Sec. 2.2)."""

import math

import pytest
import torch

from pixelwise.nn import RecurrentMeanShift
from pixelwise.ops import euclidean_mean_shift_step, kappa_from_margin, mean_shift_step, recurrent_mean_shift


def unit(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=1)


def loop_vmf_step(x, kappa, eta):
    """The definition, one point at a time in plain floats: weighted mean with weights
    exp(kappa x_i.x_j) (unshifted), eta mix, back onto the sphere."""
    out = []
    for pts in x.double().tolist():  # pts: D lists of N
        cols = [list(c) for c in zip(*pts)]  # N points of D
        new = []
        for xi in cols:
            ws = [math.exp(kappa * sum(a * b for a, b in zip(xi, xj))) for xj in cols]
            mean = [sum(w * xj[d] for w, xj in zip(ws, cols)) / sum(ws) for d in range(len(xi))]
            y = [eta * m + (1 - eta) * a for m, a in zip(mean, xi)]
            norm = math.sqrt(sum(v * v for v in y))
            new.append([v / norm for v in y])
        out.append([list(r) for r in zip(*new)])
    return torch.tensor(out, dtype=torch.float64)


def loop_euclidean_step(x, h, eta):
    out = []
    for pts in x.double().tolist():
        cols = [list(c) for c in zip(*pts)]
        new = []
        for xi in cols:
            ws = [math.exp(-sum((a - b) ** 2 for a, b in zip(xi, xj)) / (2 * h * h)) for xj in cols]
            mean = [sum(w * xj[d] for w, xj in zip(ws, cols)) / sum(ws) for d in range(len(xi))]
            new.append([eta * m + (1 - eta) * a for m, a in zip(mean, xi)])
        out.append([list(r) for r in zip(*new)])
    return torch.tensor(out, dtype=torch.float64)


# ---------------------------------------------------------------- forward against the definition

@pytest.mark.parametrize("eta", [1.0, 0.6])
def test_vmf_step_matches_per_point_loop(eta):
    x = unit(2, 4, 15)
    torch.testing.assert_close(mean_shift_step(x, 5.0, eta), loop_vmf_step(x, 5.0, eta), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("eta", [1.0, 0.3])
def test_euclidean_step_matches_per_point_loop(eta):
    g = torch.Generator().manual_seed(1)
    x = 3.0 * torch.randn(2, 2, 14, generator=g, dtype=torch.float64) + 100.0  # far from the origin
    torch.testing.assert_close(euclidean_mean_shift_step(x, 1.5, eta), loop_euclidean_step(x, 1.5, eta),
                               rtol=1e-10, atol=1e-10)


def test_euclidean_step_is_stable_for_a_tiny_bandwidth():
    # Every point is far from all others at h = 1e-3: each stays put, no 0/0.
    x = torch.tensor([[[1000.0, 1000.5, 1001.0, 5.0]]])
    torch.testing.assert_close(euclidean_mean_shift_step(x, 1e-3), x)


def test_large_kappa_is_finite_and_matches_float64_reference():
    x64 = unit(1, 8, 40, seed=3)
    y = mean_shift_step(x64.float(), 500.0)  # exp(500) overflows float32 unshifted
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.norm(dim=1), torch.ones(1, 40))
    torch.testing.assert_close(y.double(), loop_vmf_step(x64, 500.0, 1.0), rtol=0, atol=1e-4)


def test_recurrent_states_and_module_equal_the_function():
    x = 2.5 * unit(2, 5, 30, seed=4)  # not unit length: x0 is the normalised input
    states = recurrent_mean_shift(x, 4.0, 0.8, iterations=3)
    assert len(states) == 4
    torch.testing.assert_close(states[0], torch.nn.functional.normalize(x, dim=1))
    torch.testing.assert_close(states[2], mean_shift_step(states[1], 4.0, 0.8))
    module_states = RecurrentMeanShift(kappa=4.0, eta=0.8, iterations=3)(x)
    for a, b in zip(module_states, states):
        torch.testing.assert_close(a, b)


def test_module_accepts_4d_input_and_round_trips_the_shape():
    x = unit(2, 6, 5 * 7, seed=5).view(2, 6, 5, 7).transpose(2, 3)  # (2, 6, 7, 5), non-contiguous
    m = RecurrentMeanShift(iterations=2)
    states = m(x)
    flat = recurrent_mean_shift(x.reshape(2, 6, 35), 6.0, 1.0, 2)
    assert [tuple(s.shape) for s in states] == [(2, 6, 7, 5)] * 3
    for a, b in zip(states, flat):
        torch.testing.assert_close(a, b.view(2, 6, 7, 5))


def test_module_has_no_parameters_and_from_margin_ties_kappa():
    assert list(RecurrentMeanShift().parameters()) == []
    assert RecurrentMeanShift.from_margin(0.5).kappa == pytest.approx(6.0)
    m = RecurrentMeanShift.from_margin(0.5, iterations=10, eta=0.5, squared=True)
    assert (m.kappa, m.eta, m.iterations) == (pytest.approx(36.0), 0.5, 10)
    assert kappa_from_margin(0.0) == pytest.approx(3.0)
    assert "kappa=36" in repr(m) and "iterations=10" in repr(m)
    assert len(RecurrentMeanShift(iterations=0)(unit(1, 3, 4))) == 1


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs, exc, match", [
    ({"kappa": 0.0}, ValueError, "kappa must be > 0"), ({"kappa": -1.0}, ValueError, "kappa must be > 0"),
    ({"kappa": float("inf")}, ValueError, "kappa must be finite"), ({"kappa": "6"}, TypeError, "kappa must be a number"),
    ({"eta": 0.0}, ValueError, "eta must be > 0"), ({"eta": 1.5}, ValueError, "eta must be <= 1"),
    ({"eta": True}, TypeError, "eta must be a number"), ({"iterations": -1}, ValueError, "iterations must be >= 0"),
    ({"iterations": 2.0}, TypeError, "iterations must be an int"), ({"iterations": True}, TypeError, "iterations"),
])
def test_module_rejects_bad_hyperparameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RecurrentMeanShift(**kwargs)


def test_bad_inputs_name_the_argument():
    x = unit(1, 3, 5)
    with pytest.raises(ValueError, match="kappa must be > 0, got 0"):
        mean_shift_step(x, 0)
    with pytest.raises(ValueError, match="eta must be <= 1, got 1.5"):
        mean_shift_step(x, 6.0, eta=1.5)
    with pytest.raises(ValueError, match=r"x must be 3-D, got shape \(3, 5\)"):
        mean_shift_step(x[0], 6.0)
    with pytest.raises(ValueError, match=r"x must be 3-D or 4-D, got shape \(3, 5\)"):
        RecurrentMeanShift()(x[0])
    with pytest.raises(TypeError, match="floating-point"):
        RecurrentMeanShift()(torch.ones(1, 3, 5, dtype=torch.long))
    bad = x.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="x must be finite.*NaN"):
        RecurrentMeanShift()(bad)
    with pytest.raises(ValueError, match="x must be finite.*NaN"):
        euclidean_mean_shift_step(bad, 1.0)
    with pytest.raises(ValueError, match="bandwidth must be > 0, got -1"):
        euclidean_mean_shift_step(x, -1.0)
    with pytest.raises(ValueError, match="eta"):
        euclidean_mean_shift_step(x, 1.0, eta=0)


# ---------------------------------------------------------------- gradients

def test_gradcheck_recurrent_module():
    x = (1.3 * unit(1, 3, 12, seed=6)).requires_grad_(True)
    weights = torch.randn(4, 1, 3, 12, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    m = RecurrentMeanShift(kappa=4.0, eta=0.7, iterations=3)

    def f(x):
        return sum((s * w).sum() for s, w in zip(m(x), weights))

    assert torch.autograd.gradcheck(f, (x,))


def test_gradcheck_euclidean_step():
    x = torch.randn(2, 2, 12, generator=torch.Generator().manual_seed(8), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: euclidean_mean_shift_step(x, 0.8, eta=0.9), (x,))


# ---------------------------------------------------------------- dynamics

def two_noisy_clusters(n=40, noise=0.15, seed=9):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(3, dtype=torch.float64)[:, :2]  # e1 and e2: cosine 0
    x = centres.repeat_interleave(n, dim=1) + noise * torch.randn(3, 2 * n, generator=g, dtype=torch.float64)
    return torch.nn.functional.normalize(x, dim=0)[None], torch.arange(2).repeat_interleave(n)


def test_gbms_collapses_two_separated_clusters_to_two_distinct_points():
    x, labels = two_noisy_clusters()
    states = RecurrentMeanShift(kappa=kappa_from_margin(0.5, squared=True), iterations=10)(x)
    final = states[-1][0]
    for k in range(2):
        members = final[:, labels == k]
        assert (members - members[:, :1]).norm(dim=0).max() < 1e-6
    cos_between = float(final[:, labels == 0][:, 0] @ final[:, labels == 1][:, 0])
    assert cos_between < 0.2  # still about orthogonal: the clusters stay apart


def similarity_stats(x, labels, kappa):
    """Mean positive-pair and max negative-pair similarity s = (1 + cos) / 2 at every state."""
    pos = labels[:, None] == labels[None, :]
    pos_mean, neg_max = [], []
    for s in RecurrentMeanShift(kappa=kappa, iterations=10)(x):
        sim = 0.5 * (1 + s[0].T @ s[0])
        pos_mean.append(float(sim[pos].mean()))
        neg_max.append(float(sim[~pos].max()))
    return pos_mean, neg_max


def test_similarity_statistics_sharpen_like_supplement_fig1():
    # Supplement Fig. 1: through the iterations positive-pair similarities are driven to 1 and
    # negative pairs are pushed apart (here to about the centres' similarity 0.5).
    x, labels = two_noisy_clusters()
    pos_mean, neg_max = similarity_stats(x, labels, kappa_from_margin(0.5, squared=True))
    assert pos_mean[0] < 0.98 and neg_max[0] > 0.75
    assert all(b >= a - 1e-12 for a, b in zip(pos_mean, pos_mean[1:]))
    assert all(b <= a + 1e-12 for a, b in zip(neg_max, neg_max[1:]))
    assert pos_mean[3] > 0.9999 and pos_mean[-1] > 1 - 1e-12
    assert neg_max[-1] < 0.51


def test_wide_kernel_slowly_blurs_clusters_together():
    # GBMS is not run to convergence: with a wide kernel (kappa = 6) the two collapsed clusters
    # keep attracting each other, so their similarity creeps up with every iteration.
    x, labels = two_noisy_clusters()
    pos_mean, neg_max = similarity_stats(x, labels, 6.0)
    assert pos_mean[2] > 0.9999
    assert all(b > a for a, b in zip(neg_max[3:], neg_max[4:]))


# ---------------------------------------------------------------- supplement Sec. 2.2: 1-D toy
#
# Data: 100 points each from N(3, 0.2), N(4, 0.3), N(5, 0.1) (seed 0). Fixed regressor
# y = 0.5 x - 0.5; targets 1 for the mu=3 group and 2 for the mu=4 AND mu=5 groups (the middle
# group is labelled 2 as a whole, so the ideal spots are x = 3 and x = 5 and the middle group
# must travel). Loss 1/2 sum_i (y_i - t_i)^2 (a sum: with a mean, steps of 0.1 would not move
# 300 points), so without GBMS the gradient is (x_i - ideal_i) / 4. 30 steps of size 0.1 on the
# data; Euclidean GBMS with bandwidth 0.2 inserted before the loss.

H, STEPS, LR = 0.2, 30, 0.1


@pytest.fixture(scope="module")
def toy():
    g = torch.Generator().manual_seed(0)
    n = 100
    data = torch.cat([3 + 0.2 * torch.randn(n, generator=g, dtype=torch.float64),
                      4 + 0.3 * torch.randn(n, generator=g, dtype=torch.float64),
                      5 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)])
    target = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64).repeat_interleave(n)
    return data, target


def gbms(x, loops):
    states = [x]
    for _ in range(loops):
        states.append(euclidean_mean_shift_step(states[-1][None, None], H)[0, 0])
    return states


def toy_losses(x, target, loops):
    return [0.5 * ((0.5 * s - 0.5 - target) ** 2).sum() for s in gbms(x, loops)]


def toy_grad(x, target, loops, every):
    x = x.detach().requires_grad_(True)
    per = toy_losses(x, target, loops)
    return torch.autograd.grad(sum(per) if every else per[-1], x)[0]


def toy_train(x, target, loops, every):
    for _ in range(STEPS):
        x = x - LR * toy_grad(x, target, loops, every)
    return x


def piles(v, gap=0.05):
    """(centre, width, members) of the runs of sorted values separated by more than ``gap``."""
    v, order = v.sort()
    cuts = ((v[1:] - v[:-1]) > gap).nonzero().flatten() + 1
    return [(float(p.mean()), float(p.max() - p.min()), o) for p, o in
            zip(torch.tensor_split(v, cuts.tolist()), torch.tensor_split(order, cuts.tolist()))]


def test_toy_unsupervised_gbms_groups_raw_data_into_three_piles(toy):
    data, _ = toy
    found = piles(gbms(data, 10)[-1])
    assert len(found) == 3
    for (centre, width, _), mu in zip(found, (3, 4, 5)):
        assert abs(centre - mu) < 0.1 and width < 1e-9


def test_toy_losses_at_every_loop_reach_two_tight_groups_at_the_ideal_spots(toy):
    data, target = toy
    x = toy_train(data, target, loops=5, every=True)
    out = gbms(x, 5)[-1]
    found = piles(out)
    assert len(found) == 2
    for (centre, width, members), ideal, label in zip(found, (3.0, 5.0), (1.0, 2.0)):
        assert abs(centre - ideal) < 0.01 and width < 1e-9
        assert (target[members] == label).all()
    loss_after_gbms = float(toy_losses(x, target, 5)[-1])
    baseline = toy_train(data, target, loops=0, every=False)
    loss_baseline = float(toy_losses(baseline, target, 0)[0])
    assert loss_after_gbms < 5e-3 and loss_baseline > 1.0
    # Without GBMS the middle group is only part of the way to its ideal spot 5.
    assert 4.3 < float(baseline[100:200].mean()) < 4.8


def test_toy_gbms_gives_larger_gradients_far_from_the_ideal_spot(toy):
    data, target = toy
    far = (data - (2 * target + 1)).abs() > 0.5
    base = float(toy_grad(data, target, 0, False)[far].abs().mean())
    for loops in (1, 2, 3, 5):
        for every in (False, True):
            assert float(toy_grad(data, target, loops, every)[far].abs().mean()) > 1.05 * base


def test_toy_more_loops_and_losses_at_every_loop_give_larger_gradients(toy):
    data, target = toy
    single = [float(toy_grad(data, target, t, False).norm()) for t in (1, 2, 3)]
    assert single[0] < single[1] < single[2]
    for t in (1, 2, 3, 5):
        assert float(toy_grad(data, target, t, True).norm()) > 1.5 * float(toy_grad(data, target, t, False).norm())
