"""PAC-CRF: mean-field identities, float64 loop oracles for every compatibility form, gradcheck."""

import math

import pytest
import torch

from pixelwise.nn import PacCRF, PacCRFLoose, PairwiseKernel

torch.manual_seed(0)


def _oracle_step(unary, image, q, term, spec):
    """One mean-field message from ``q`` by explicit loops over pixels, taps and labels (float64)."""
    B, L, H, W = unary.shape
    k, d = spec.kernel_size, spec.dilation
    c = k // 2
    f = image * term.log_scale.detach().exp().view(1, -1, 1, 1)
    if spec.compat == "4d":
        Wt = term.weight.detach()
    else:
        sp = term.spatial.detach()
        mu = term.compat.detach() if spec.compat == "2d" else 1.0 - torch.eye(L, dtype=unary.dtype)
        Wt = mu[:, :, None, None] * sp  # W[l, l', a, b] = mu(l, l') * W2d[a, b]
    msg = torch.zeros_like(unary)
    for b in range(B):
        for y in range(H):
            for x in range(W):
                for a in range(k):
                    for bb in range(k):
                        if a == c and bb == c:
                            continue  # j != i
                        yy, xx = y + (a - c) * d, x + (bb - c) * d
                        if not (0 <= yy < H and 0 <= xx < W):
                            continue
                        K = math.exp(-0.5 * float(((f[b, :, y, x] - f[b, :, yy, xx]) ** 2).sum()))
                        for l in range(L):
                            msg[b, l, y, x] += K * float((Wt[l, :, a, bb] * q[b, :, yy, xx]).sum())
    return msg


def _random_weights(crf):
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return crf


@pytest.mark.parametrize("compat", ["4d", "2d", "potts"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_one_step_matches_loop_oracle(compat, dilation):
    L, H, W = 3, 6, 7
    spec = PairwiseKernel(3, dilation, 1, compat)
    crf = _random_weights(PacCRF(L, [spec], steps=1, output="prob").double())
    unary = torch.randn(2, L, H, W, dtype=torch.float64)
    image = torch.rand(2, 3, H, W, dtype=torch.float64)
    q0 = torch.softmax(unary, 1)
    expected = torch.softmax(unary - _oracle_step(unary, image, q0, crf.terms[0][0], spec), 1)
    torch.testing.assert_close(crf(unary, image), expected, rtol=1e-10, atol=1e-12)


def test_two_kernels_two_steps_match_oracle():
    L, H, W = 3, 7, 6
    specs = [PairwiseKernel(3, 1), PairwiseKernel(3, 3, compat="potts")]
    crf = _random_weights(PacCRF(L, specs, steps=2, output="log").double())
    unary = torch.randn(1, L, H, W, dtype=torch.float64)
    image = torch.rand(1, 3, H, W, dtype=torch.float64)
    q = torch.softmax(unary, 1)
    for _ in range(2):
        msg = sum(_oracle_step(unary, image, q, t, s) for t, s in zip(crf.terms[0], specs))
        q = torch.softmax(unary - msg, 1)
    torch.testing.assert_close(crf(unary, image), q.log(), rtol=1e-9, atol=1e-10)


def test_potts_k1_one_step_is_hand_written_mean_field():
    """K = 1 (constant image), Potts, uniform spatial weight w: message(l) = w * sum_{j != i} (1 - Q_j(l))."""
    L, H, W, w = 4, 5, 5, 0.7
    crf = PacCRF(L, [PairwiseKernel(3, 1, compat="potts")], steps=1, output="prob").double()
    with torch.no_grad():
        crf.terms[0][0].spatial.fill_(w)
    unary = torch.randn(1, L, H, W, dtype=torch.float64)
    image = torch.full((1, 3, H, W), 0.5, dtype=torch.float64)
    q = torch.softmax(unary, 1)
    expected = torch.empty_like(q)
    for y in range(H):
        for x in range(W):
            msg = torch.zeros(L, dtype=torch.float64)
            for yy in range(max(0, y - 1), min(H, y + 2)):
                for xx in range(max(0, x - 1), min(W, x + 2)):
                    if (yy, xx) != (y, x):
                        msg += w * (1 - q[0, :, yy, xx])
            expected[0, :, y, x] = torch.softmax(unary[0, :, y, x] - msg, 0)
    torch.testing.assert_close(crf(unary, image), expected)


@pytest.mark.parametrize("compat", ["4d", "2d", "potts"])
def test_q_sums_to_one_and_log_matches_prob(compat):
    unary = torch.randn(2, 5, 20, 17) * 3
    image = torch.rand(2, 3, 20, 17)
    crf = PacCRF(5, [PairwiseKernel(5, 4, compat=compat), PairwiseKernel(3, 8, compat=compat)], steps=3,
                 output="prob")
    q = crf(unary, image)
    torch.testing.assert_close(q.sum(1), torch.ones(2, 20, 17))
    crf.output = "log"
    torch.testing.assert_close(crf(unary, image).exp(), q)


@pytest.mark.parametrize("compat", ["4d", "2d", "potts"])
def test_zero_pairwise_weights_give_softmax_of_unary(compat):
    crf = PacCRF(4, [PairwiseKernel(5, 2, compat=compat)], steps=5, output="prob")
    with torch.no_grad():
        for name, p in crf.named_parameters():
            if not name.endswith("log_scale"):
                p.zero_()
    unary = torch.randn(1, 4, 12, 9)
    torch.testing.assert_close(crf(unary, torch.rand(1, 3, 12, 9)), torch.softmax(unary, 1))


def test_zero_steps_is_softmax():
    unary = torch.randn(1, 3, 8, 8)
    crf = PacCRF(3, [PairwiseKernel(3, 1)], steps=0, output="prob")
    torch.testing.assert_close(crf(unary, torch.rand(1, 3, 8, 8)), torch.softmax(unary, 1))


def test_centre_tap_is_excluded():
    crf = PacCRF(3, [PairwiseKernel(3, 1)], steps=1, output="prob")
    with torch.no_grad():
        crf.terms[0][0].weight.zero_()
        crf.terms[0][0].weight[:, :, 1, 1] = 5.0  # only the centre: must have no effect
    unary = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(crf(unary, torch.rand(1, 3, 6, 6)), torch.softmax(unary, 1))


def test_blur_equals_message_on_pooled_grid_upsampled():
    L, H, W = 3, 12, 10
    spec = PairwiseKernel(3, 1, blur=2, compat="4d")
    crf = _random_weights(PacCRF(L, [spec], steps=1, output="prob").double())
    unary = torch.randn(1, L, H, W, dtype=torch.float64)
    image = torch.rand(1, 3, H, W, dtype=torch.float64)
    term = crf.terms[0][0]
    pool = torch.nn.functional.avg_pool2d
    q_low = pool(torch.softmax(unary, 1), 2)
    low_image = pool(image, 2)
    sharp = PairwiseKernel(3, 1, 1, "4d")
    msg_low = _oracle_step(torch.zeros_like(q_low), low_image, q_low, term, sharp)
    msg = torch.nn.functional.interpolate(msg_low, size=(H, W), mode="bilinear", align_corners=False)
    torch.testing.assert_close(crf(unary, image), torch.softmax(unary - msg, 1))


@pytest.mark.parametrize("blur", [1, 3])
def test_potts_shortcut_equals_4d_potts_weights_at_borders_and_with_blur(blur):
    """total - filtered must count exactly the taps inside the (pooled) image, also where a
    dilated window sticks out and where the blurred grid has a partial last cell (13 = 4*3 + 1)."""
    L, H, W = 4, 13, 11
    potts = PacCRF(L, [PairwiseKernel(5, 3, blur, "potts")], steps=2).double()
    full = PacCRF(L, [PairwiseKernel(5, 3, blur, "4d")], steps=2).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        p, f = potts.terms[0][0], full.terms[0][0]
        p.spatial.copy_(torch.randn(5, 5, generator=g, dtype=torch.float64))
        p.log_scale.copy_(torch.randn(3, generator=g, dtype=torch.float64))
        f.log_scale.copy_(p.log_scale)
        f.weight.copy_((1 - torch.eye(L, dtype=torch.float64))[:, :, None, None] * p.spatial)
    unary = torch.randn(2, L, H, W, generator=g, dtype=torch.float64)
    image = torch.rand(2, 3, H, W, generator=g, dtype=torch.float64)
    torch.testing.assert_close(potts(unary, image), full(unary, image), rtol=1e-12, atol=1e-12)


def test_loose_steps_have_their_own_weights_and_equal_shared_when_tied():
    specs = [PairwiseKernel(3, 2)]
    shared = _random_weights(PacCRF(3, specs, steps=3).double())
    loose = PacCRFLoose(3, specs, steps=3).double()
    assert len(loose.terms) == 3 and len(shared.terms) == 1
    with torch.no_grad():
        for step_terms in loose.terms:
            step_terms.load_state_dict(shared.terms[0].state_dict())
    unary, image = torch.randn(1, 3, 9, 9, dtype=torch.float64), torch.rand(1, 3, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(loose(unary, image), shared(unary, image))
    with torch.no_grad():
        loose.terms[2][0].weight.mul_(3)
    assert not torch.allclose(loose(unary, image), shared(unary, image))
    with pytest.raises(ValueError, match="steps"):
        loose(unary, image, steps=4)


@pytest.mark.parametrize("compat", ["4d", "2d", "potts"])
def test_gradcheck_unary_and_parameters(compat):
    crf = _random_weights(PacCRF(3, [PairwiseKernel(3, 2, compat=compat)], steps=2).double())
    unary = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    image = torch.rand(1, 3, 6, 5, dtype=torch.float64)
    names, params = zip(*crf.named_parameters())

    def g(u, *ps):
        return torch.func.functional_call(crf, dict(zip(names, ps)), (u, image))

    inputs = (unary, *[p.detach().clone().requires_grad_() for p in params])
    assert torch.autograd.gradcheck(g, inputs, eps=1e-6, atol=1e-5)


def test_crf_cleans_noisy_unaries_on_a_two_region_image():
    H, W = 32, 32
    image = torch.zeros(1, 3, H, W)
    image[:, 0, :, : W // 2] = 1.0
    image[:, 2, :, W // 2:] = 1.0
    label = torch.zeros(H, W, dtype=torch.long)
    label[:, W // 2:] = 1
    g = torch.Generator().manual_seed(0)
    unary = 0.6 * torch.nn.functional.one_hot(label, 2).permute(2, 0, 1)[None].float() + torch.randn(1, 2, H, W,
                                                                                                     generator=g)
    before = (unary.argmax(1)[0] == label).float().mean()
    crf = PacCRF(2, [PairwiseKernel(5, 1, compat="potts")], steps=5, init_weight=8.0)
    after = (crf(unary, image).argmax(1)[0] == label).float().mean()
    assert before < 0.8 and after > 0.97


def test_bad_inputs_are_named():
    crf = PacCRF(4, [PairwiseKernel(3, 1)])
    with pytest.raises(ValueError, match="unary and image"):
        crf(torch.randn(1, 4, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="unary has 3 classes"):
        crf(torch.randn(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="RGB"):
        crf(torch.randn(1, 4, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        crf(torch.full((1, 4, 8, 8), float("nan")), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="unary must be"):
        crf(torch.randn(4, 8, 8), torch.rand(1, 3, 8, 8))
    for bad in (dict(kernel_size=4), dict(kernel_size=1), dict(dilation=0), dict(compat="full"), dict(blur=0)):
        with pytest.raises(ValueError, match="PairwiseKernel"):
            PairwiseKernel(**bad)
    for bad in (dict(kernel_size=3.0), dict(dilation=True), dict(blur="2")):
        with pytest.raises(TypeError, match="PairwiseKernel.* must be an int"):
            PairwiseKernel(**bad)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        PacCRF(1)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        PacCRF(3.0)
    with pytest.raises(TypeError, match="steps must be an int"):
        PacCRF(3, steps=True)
    with pytest.raises(ValueError, match="init_sigma must be > 0"):
        PacCRF(3, init_sigma=0.0)
    with pytest.raises(TypeError, match="init_sigma must be a number"):
        PacCRF(3, init_sigma=None)
    with pytest.raises(ValueError, match="output"):
        PacCRF(3, output="logits")
    with pytest.raises(ValueError, match="kernels"):
        PacCRF(3, kernels=[])
    with pytest.raises(ValueError, match="guide_channels"):
        PacCRF(3, guide_channels=0)
    with pytest.raises(ValueError, match="steps"):  # was silently softmax(unary)
        crf(torch.randn(1, 4, 8, 8), torch.rand(1, 3, 8, 8), steps=-1)


def test_paper_configurations_build_and_reach():
    one = PacCRF(21, [PairwiseKernel(5, 32)])
    two = PacCRF(21, [(5, 16), (5, 64)])
    assert [t.padding for t in one.terms[0]] == [64]
    assert [(t.spec.kernel_size - 1) * t.spec.dilation + 1 for t in two.terms[0]] == [65, 257]
    assert sum(p.numel() for p in one.parameters()) == 21 * 21 * 25 + 3
