"""Depth-aware gating, recurrent refinement, PAG and MultiPool (Kong's thesis ch. 3-4): the
identities of the spec (uniform gate = mean, one-hot gate = one branch, loops add no parameters,
straight-through Gumbel gradients, gate off = identity...)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixelwise.checks import NotAChoiceError, OutOfRangeError, ShapeError, WrongTypeError
from pixelwise.nn import DepthAwareGating, MultiPool, PagResidual, RecurrentRefinement, conv_norm_act
from pixelwise.ops import (
    annealed_tau,
    bin_gate,
    depth_bins,
    gated_sum,
    gumbel_gate,
    gumbel_noise,
    kl_sparsity,
)
from pixelwise.ops.gating import TAU_MIN


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- depth bins ---------------------------------------------------------------------------------

def test_depth_bins_far_to_near_order_and_edges():
    depth = torch.tensor([[0.5, 2.0, 3.9, 4.0, 8.0, 15.9, 16.0, 100.0]])
    assert depth_bins(depth).tolist() == [[4, 3, 3, 2, 1, 1, 0, 0]]
    assert depth_bins(depth, edges=(1.0, 10.0)).tolist() == [[2, 1, 1, 1, 1, 0, 0, 0]]


def test_depth_bins_invalid_pixels():
    depth = torch.tensor([0.0, -1.0, float("nan"), float("inf"), 3.0])
    with pytest.raises(ShapeError, match="invalid"):
        depth_bins(depth)
    assert depth_bins(depth, invalid_bin=0).tolist() == [0, 0, 0, 0, 3]
    assert depth_bins(depth, invalid_bin=4).tolist() == [4, 4, 4, 4, 3]
    with pytest.raises(OutOfRangeError, match="invalid_bin"):
        depth_bins(depth, invalid_bin=5)


def test_bin_gate_one_hot():
    bins = torch.randint(0, 5, (2, 6, 7), generator=_gen(0))
    gate = bin_gate(bins, 5, dtype=torch.float64)
    assert gate.shape == (2, 5, 6, 7) and gate.dtype == torch.float64
    assert torch.equal(gate.sum(1), torch.ones(2, 6, 7, dtype=torch.float64))
    assert torch.equal(gate.argmax(1), bins)


# --- gated sum ----------------------------------------------------------------------------------

def test_gated_sum_matches_naive_loop():
    g = _gen(1)
    branches = torch.randn(2, 5, 3, 4, 6, generator=g, dtype=torch.float64)
    gate = torch.rand(2, 5, 4, 6, generator=g, dtype=torch.float64)
    naive = torch.zeros(2, 3, 4, 6, dtype=torch.float64)
    for b in range(2):
        for k in range(5):
            for c in range(3):
                for y in range(4):
                    for x in range(6):
                        naive[b, c, y, x] += gate[b, k, y, x] * branches[b, k, c, y, x]
    torch.testing.assert_close(gated_sum(branches, gate), naive, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gated_sum(list(branches.unbind(1)), gate), naive, rtol=1e-12, atol=1e-12)


def test_gated_sum_uniform_gate_is_mean_and_one_hot_selects():
    branches = torch.randn(2, 4, 3, 5, 5, generator=_gen(2), dtype=torch.float64)
    uniform = torch.full((2, 4, 5, 5), 0.25, dtype=torch.float64)
    # 1/4 is a power of two: scaling is exact, so the identity holds bit for bit
    assert torch.equal(gated_sum(branches, uniform), branches.sum(1) / 4)
    torch.testing.assert_close(gated_sum(branches, uniform), branches.mean(1), rtol=1e-15, atol=1e-15)
    bins = torch.randint(0, 4, (2, 5, 5), generator=_gen(3))
    out = gated_sum(branches, bin_gate(bins, 4, dtype=torch.float64))
    expect = branches.gather(1, bins[:, None, None].expand(2, 1, 3, 5, 5)).squeeze(1)
    assert torch.equal(out, expect)


def test_gated_sum_gradcheck():
    g = _gen(4)
    branches = torch.randn(1, 3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gate = torch.rand(1, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gated_sum, (branches, gate))


def test_gated_sum_bad_arguments():
    with pytest.raises(ShapeError, match="gate"):
        gated_sum(torch.randn(1, 3, 2, 4, 4), torch.rand(1, 2, 4, 4))
    with pytest.raises(ShapeError, match="branches"):
        gated_sum(torch.randn(3, 2, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(OutOfRangeError, match="branches"):
        gated_sum([], torch.rand(1, 3, 4, 4))
    with pytest.raises(WrongTypeError, match="bins"):
        bin_gate(torch.zeros(1, 2, 2), 3)
    with pytest.raises(OutOfRangeError, match="bins"):
        bin_gate(torch.full((1, 2, 2), 3), 3)


# --- Gumbel gate --------------------------------------------------------------------------------

def test_gumbel_gate_forward_is_exactly_one_hot_at_argmax():
    logits = torch.randn(3, 4, 5, 6, generator=_gen(5))
    gate = gumbel_gate(logits, tau=0.3, generator=_gen(6))
    assert bool(((gate == 0) | (gate == 1)).all())
    assert torch.equal(gate.sum(1), torch.ones(3, 5, 6))
    y = F.log_softmax(logits, 1) + gumbel_noise(logits.shape, generator=_gen(6))
    assert torch.equal(gate.argmax(1), y.argmax(1))


def test_gumbel_gate_straight_through_gradient_is_softmax_relaxation_gradient():
    logits = torch.randn(2, 3, 4, 4, generator=_gen(7), dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 4, 4, generator=_gen(8), dtype=torch.float64)
    tau = 0.5
    (gumbel_gate(logits, tau, generator=_gen(9)) * weights).sum().backward()
    st_grad = logits.grad.clone()
    logits.grad = None
    noise = gumbel_noise(logits.shape, generator=_gen(9), dtype=torch.float64)
    soft = F.softmax((F.log_softmax(logits, 1) + noise) / tau, dim=1)
    (soft * weights).sum().backward()
    torch.testing.assert_close(st_grad, logits.grad, rtol=1e-12, atol=1e-12)
    # hard=False returns the relaxation itself
    torch.testing.assert_close(gumbel_gate(logits, tau, hard=False, generator=_gen(9)), soft)


def test_gumbel_gate_finite_at_smallest_tau_over_many_seeds():
    for seed in range(200):
        logits = (20 * torch.randn(4, 2, 8, 8, generator=_gen(seed))).requires_grad_()
        gate = gumbel_gate(logits, tau=1e-6, generator=_gen(10_000 + seed))  # clamped to TAU_MIN
        (gate[:, 1] * torch.randn(4, 8, 8, generator=_gen(seed))).sum().backward()
        assert torch.isfinite(gate).all() and torch.isfinite(logits.grad).all(), seed
    # extreme logits too
    logits = torch.tensor([[1e4, -1e4], [0.0, 0.0]], requires_grad=True)
    gate = gumbel_gate(logits, tau=TAU_MIN, generator=_gen(0))
    gate[:, 0].sum().backward()
    assert torch.isfinite(gate).all() and torch.isfinite(logits.grad).all()


def test_gumbel_gate_tau_clamped_to_minimum():
    logits = torch.randn(2, 3, 4, 4, generator=_gen(11))
    a = gumbel_gate(logits, tau=1e-9, hard=False, generator=_gen(12))
    b = gumbel_gate(logits, tau=TAU_MIN, hard=False, generator=_gen(12))
    assert torch.equal(a, b)


def test_gumbel_gate_eval_is_deterministic_noise_free_argmax():
    logits = torch.randn(2, 5, 6, 6, generator=_gen(13))
    a = gumbel_gate(logits, 0.1, training=False)
    b = gumbel_gate(logits, 0.1, training=False, generator=_gen(99))
    assert torch.equal(a, b)
    assert torch.equal(a, F.one_hot(logits.argmax(1), 5).permute(0, 3, 1, 2).float())


def test_gumbel_gate_samples_follow_softmax_probabilities():
    logits = torch.log(torch.tensor([0.2, 0.8])).view(1, 2, 1, 1).expand(1, 2, 100, 100).contiguous()
    on = gumbel_gate(logits, generator=_gen(14))[:, 1].mean()
    assert abs(float(on) - 0.8) < 0.02


def test_gumbel_gate_bad_arguments():
    logits = torch.randn(1, 2, 3, 3)
    with pytest.raises(OutOfRangeError, match="tau"):
        gumbel_gate(logits, tau=0.0)
    with pytest.raises(OutOfRangeError, match="tau"):
        gumbel_gate(logits, tau=float("nan"))
    with pytest.raises(WrongTypeError, match="logits"):
        gumbel_gate(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(WrongTypeError, match="hard"):
        gumbel_gate(logits, hard=1)
    with pytest.raises(OutOfRangeError, match="dim"):
        gumbel_gate(logits, dim=4)


# --- sparsity and temperature -------------------------------------------------------------------

def test_kl_sparsity_hand_case_and_direction():
    gate = torch.tensor([1.0, 0.0, 0.0, 0.0])  # on fraction 1/4
    expect = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert float(kl_sparsity(gate, 0.5)) == pytest.approx(expect, rel=1e-6)
    assert float(kl_sparsity(0.25, 0.5)) == pytest.approx(expect, rel=1e-6)
    # KL(rho || g), not KL(g || rho)
    other = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert float(kl_sparsity(0.5, 0.25)) == pytest.approx(other, rel=1e-6)
    assert float(kl_sparsity(torch.full((3, 3), 0.7), 0.7)) == pytest.approx(0.0, abs=1e-7)


def test_kl_sparsity_clamped_finite_at_extremes():
    for rho in (0.0, 0.5, 1.0):
        for frac in (0.0, 1.0):
            g = torch.tensor([frac], requires_grad=True)
            loss = kl_sparsity(g, rho)
            loss.backward()
            assert math.isfinite(loss.detach().item()) and torch.isfinite(g.grad).all()
    assert float(kl_sparsity(1.0, 1.0)) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(OutOfRangeError, match="rho"):
        kl_sparsity(0.5, 1.5)


def test_kl_sparsity_gradient_through_straight_through_gate():
    logits = torch.zeros(1, 2, 8, 8, requires_grad=True)
    gate = gumbel_gate(logits, generator=_gen(15))[:, 1:]
    kl_sparsity(gate, 0.1).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_annealed_tau_schedules():
    assert annealed_tau(0, 10) == 1.0 and annealed_tau(10, 10) == 0.1 and annealed_tau(99, 10) == 0.1
    assert annealed_tau(5, 10) == pytest.approx(math.sqrt(0.1))
    assert annealed_tau(5, 10, mode="linear") == pytest.approx(0.55)
    taus = [annealed_tau(s, 20) for s in range(21)]
    ratios = [b / a for a, b in zip(taus, taus[1:])]
    assert all(r == pytest.approx(ratios[0]) for r in ratios)
    with pytest.raises(NotAChoiceError, match="mode"):
        annealed_tau(0, 10, mode="cosine")
    with pytest.raises(OutOfRangeError, match="total_steps"):
        annealed_tau(0, 0)


# --- DepthAwareGating ---------------------------------------------------------------------------

def _branches(m: DepthAwareGating, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([b(x) for b in m.branches], dim=1)


def test_depth_aware_gating_uniform_is_mean_of_branches_exactly():
    torch.manual_seed(0)
    m = DepthAwareGating(3, 4, mode="uniform").double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    assert torch.equal(m(x), _branches(m, x).mean(1))


def test_depth_aware_gating_one_hot_bins_select_one_branch_exactly():
    torch.manual_seed(1)
    m = DepthAwareGating(3, 4).double().eval()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    outs = _branches(m, x)
    for k in range(5):
        bins = torch.full((2, 12, 12), k)
        assert torch.equal(m(x, bins), outs[:, k])
    depth = 30 * torch.rand(2, 12, 12, dtype=torch.float64) + 0.1
    bins = depth_bins(depth)
    expect = outs.gather(1, bins[:, None, None].expand(2, 1, 4, 12, 12)).squeeze(1)
    assert torch.equal(m(x, bins), expect)
    # far -> branch 0 (dilation 1), near -> the last branch (dilation 16)
    far, near = depth_bins(torch.tensor([100.0])), depth_bins(torch.tensor([0.5]))
    assert m.dilations[int(far)] == 1 and m.dilations[int(near)] == 16


def test_depth_aware_gating_attention_is_softmax_gate():
    torch.manual_seed(2)
    m = DepthAwareGating(3, 4, mode="attention").double().eval()
    x = torch.randn(1, 3, 10, 10, dtype=torch.float64)
    gate = F.softmax(m.attention(x), dim=1)
    torch.testing.assert_close(m(x), gated_sum(_branches(m, x), gate))
    torch.testing.assert_close(m.last_gate.sum(1), torch.ones(1, 10, 10, dtype=torch.float64))


def test_depth_aware_gating_bad_arguments():
    with pytest.raises(NotAChoiceError, match="mode"):
        DepthAwareGating(3, 4, mode="soft")
    with pytest.raises(OutOfRangeError, match="dilations"):
        DepthAwareGating(3, 4, dilations=(1, 0))
    m = DepthAwareGating(3, 4)
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="bins"):
        m(x)
    with pytest.raises(ShapeError, match="bins"):
        m(x, torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(OutOfRangeError, match="bins"):
        m(x, torch.full((1, 8, 8), 5))
    with pytest.raises(ValueError, match="uniform"):
        DepthAwareGating(3, 4, mode="uniform")(x, torch.zeros(1, 8, 8, dtype=torch.long))


# --- RecurrentRefinement ------------------------------------------------------------------------

def test_recurrent_refinement_shares_weights_and_returns_every_loop():
    torch.manual_seed(3)
    block = nn.Sequential(conv_norm_act(6 + 2, 6), nn.Conv2d(6, 2, 1))
    r1, r3 = RecurrentRefinement(block, loops=1), RecurrentRefinement(block, loops=3)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(r1) == count(r3) == count(block)
    r3.eval()
    feats, pred = torch.randn(1, 6, 8, 8), torch.randn(1, 2, 8, 8)
    preds = r3(feats, pred)
    assert len(preds) == 3 and len(r3(feats, pred, loops=5)) == 5
    manual, p = [], pred
    for _ in range(3):
        p = block(torch.cat([feats, p], 1))
        manual.append(p)
    for a, b in zip(preds, manual):
        assert torch.equal(a, b)


def test_recurrent_refinement_with_depth_gating_block():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.gating = DepthAwareGating(5 + 3, 8, mode="attention")
            self.head = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            return self.head(self.gating(x))

    r = RecurrentRefinement(Block(), loops=2)
    preds = r(torch.randn(2, 5, 8, 8), torch.randn(2, 3, 8, 8))
    sum(p.square().mean() for p in preds).backward()
    assert all(p.grad is not None for p in r.parameters())


def test_recurrent_refinement_bad_arguments():
    with pytest.raises(OutOfRangeError, match="loops"):
        RecurrentRefinement(nn.Identity(), loops=0)
    with pytest.raises(WrongTypeError, match="block"):
        RecurrentRefinement(lambda x: x)
    r = RecurrentRefinement(nn.Conv2d(5, 3, 1))
    with pytest.raises(ShapeError, match="prediction"):
        r(torch.randn(1, 2, 8, 8), torch.randn(1, 3, 4, 4))


# --- PagResidual --------------------------------------------------------------------------------

def test_pag_residual_gate_off_is_identity_gate_on_is_full_residual():
    torch.manual_seed(4)
    m = PagResidual(6).double().eval()
    x = torch.randn(2, 6, 10, 10, dtype=torch.float64)
    off, on = torch.zeros(2, 1, 10, 10, dtype=torch.float64), torch.ones(2, 1, 10, 10, dtype=torch.float64)
    assert torch.equal(m(x, gate=off), x)
    assert m.last_on_fraction == 0.0
    assert torch.equal(m(x, gate=on), x + m.body(x))
    assert m.last_on_fraction == 1.0
    # a learned hard gate: the output is x where off and x + F(x) where on
    y = m(x)
    g = m.last_gate
    assert bool(((g == 0) | (g == 1)).all())
    assert torch.equal(y, torch.where(g.bool(), x + m.body(x), x))
    assert m.last_on_fraction == pytest.approx(g.detach().mean().item())


def test_pag_residual_training_gradients_and_sparsity_loss():
    torch.manual_seed(5)
    m = PagResidual(4, tau=0.1)
    x = torch.randn(2, 4, 8, 8)
    y = m(x, generator=_gen(16))
    loss = y.square().mean() + 1e-4 * m.sparsity_loss(0.5)
    loss.backward()
    grads = [p.grad for p in m.gate_branch.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert m.sparsity_loss(0.5).detach().item() == pytest.approx(float(kl_sparsity(m.last_on_fraction, 0.5)), rel=1e-5)


def test_pag_residual_custom_body_and_bad_arguments():
    body = nn.Conv2d(4, 4, 3, padding=1)
    m = PagResidual(4, body=body, gate_hidden=2)
    assert m.body is body
    with pytest.raises(ShapeError, match="channels"):
        m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ShapeError, match="gate"):
        m(torch.randn(1, 4, 8, 8), gate=torch.ones(1, 2, 8, 8))
    with pytest.raises(RuntimeError, match="forward"):
        PagResidual(4).sparsity_loss(0.5)
    with pytest.raises(WrongTypeError, match="body"):
        PagResidual(4, body="conv")


# --- MultiPool ----------------------------------------------------------------------------------

def test_multipool_one_hot_gate_picks_that_dilation_branch():
    torch.manual_seed(6)
    m = MultiPool(4).double().eval()
    x = torch.randn(1, 4, 24, 24, dtype=torch.float64)
    k = len(m.dilations)
    for i, d in enumerate(m.dilations):
        gate = torch.zeros(1, k, 24, 24, dtype=torch.float64)
        gate[:, i] = 1
        out = m(x, gate=gate)
        if d == 0:
            assert torch.equal(out, x)
        else:
            assert torch.equal(out, m.branches[i](x))
            assert m.branches[i][0].dilation == (d, d)


def test_multipool_modes():
    torch.manual_seed(7)
    x = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    pag = MultiPool(4, mode="pag").double()
    pag.train()
    pag(x, generator=_gen(17))
    g = pag.last_gate
    assert bool(((g == 0) | (g == 1)).all()) and torch.equal(g.sum(1), torch.ones(2, 16, 16, dtype=torch.float64))
    pag.eval()
    a, b = pag(x), pag(x)
    assert torch.equal(a, b)
    soft = MultiPool(4, mode="softmax").double().eval()
    y = soft(x)
    gate = F.softmax(soft.gate_branch(x), dim=1)
    torch.testing.assert_close(y, gated_sum([br(x) for br in soft.branches], gate))


def test_multipool_bad_arguments():
    with pytest.raises(NotAChoiceError, match="mode"):
        MultiPool(4, mode="max")
    with pytest.raises(OutOfRangeError, match="dilations"):
        MultiPool(4, dilations=(0, -1))
    with pytest.raises(ShapeError, match="gate"):
        MultiPool(4)(torch.randn(1, 4, 8, 8), gate=torch.ones(1, 3, 8, 8))
