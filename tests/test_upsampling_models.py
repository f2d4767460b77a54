"""Joint-upsampling models: Table 5 parameter counts, interfaces, the residual/normalisation contract."""

import pytest
import torch
import torch.nn.functional as F

from pixelwise.models import count_parameters, create_model, list_models
from pixelwise.models.upsampling_base import GuidedUpsampler
from pixelwise.ops import joint_bilateral_upsample

# Su et al. 2019, Table 5 (depth); the flow variants only change the first and last layer.
TABLE5 = {"pac_upsampler": {4: 183_489, 8: 221_937, 16: 260_385},
          "pac_upsampler_lite": {4: 55_509, 8: 56_273, 16: 55_777}}


@pytest.mark.parametrize("name", sorted(TABLE5))
@pytest.mark.parametrize("factor", [4, 8, 16])
def test_parameter_counts_match_table5(name, factor):
    assert count_parameters(create_model(name, factor=factor)) == TABLE5[name][factor]


@pytest.mark.parametrize("name", sorted(TABLE5))
@pytest.mark.parametrize("factor", [4, 8, 16])
def test_flow_variant_changes_only_first_and_last_layer(name, factor):
    depth, flow = create_model(name, factor=factor), create_model(name, factor=factor, kind="flow")
    first = depth.encoder[0]
    last = depth.head[-1]
    # one more input channel in the first conv, one more output channel (plus bias) in the last
    extra = first.out_channels * 25 + last.in_channels * 25 + 1
    assert count_parameters(flow) - count_parameters(depth) == extra


def test_djf_parameter_count():
    # Li et al. 2016: 9x9/96, 1x1/48, 5x5/1 twice, then 9x9/64, 1x1/32, 5x5/1.
    expected = (1 * 81 * 96 + 96 + 96 * 48 + 48 + 48 * 25 + 1) + (3 * 81 * 96 + 96 + 96 * 48 + 48 + 48 * 25 + 1) \
        + (2 * 81 * 64 + 64 + 64 * 32 + 32 + 32 * 25 + 1)
    assert count_parameters(create_model("djf")) == expected == 56_323


def test_registry_lists_and_rejects():
    assert {"pac_upsampler", "pac_upsampler_lite", "djf", "bicubic", "bilinear", "jbu"} <= set(list_models())
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="variant='lite', factor=2"):
        create_model("pac_upsampler_lite", factor=2)
    with pytest.raises(ValueError, match="kind"):
        create_model("djf", kind="normals")


def _inputs(b=2, c=1, h=5, w=7, factor=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g) * 30 + 5, torch.rand(b, 3, factor * h, factor * w, generator=g)


@pytest.mark.parametrize("name", ["pac_upsampler", "pac_upsampler_lite", "djf"])
@pytest.mark.parametrize("kind", ["depth", "flow"])
def test_untrained_learned_models_equal_interpolation(name, kind):
    """The residual branch starts at zero, so before training a model is exactly its interpolation."""
    channels = 1 if kind == "depth" else 2
    x, g = _inputs(c=channels, factor=4)
    model = create_model(name, factor=4, kind=kind)
    mode = "bicubic" if kind == "depth" else "bilinear"
    expected = F.interpolate(x, scale_factor=4, mode=mode, align_corners=False)
    torch.testing.assert_close(model(x, g), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["pac_upsampler_lite", "djf"])
def test_learned_models_are_equivariant_to_target_units(name):
    """Normalisation: metres vs millimetres (or any affine change of the target) gives the same map."""
    torch.manual_seed(0)
    model = create_model(name, factor=4)
    for p in model.parameters():  # leave the zero-init so the network part is exercised
        p.data.add_(torch.randn_like(p) * 0.05)
    x, g = _inputs(factor=4)
    y = model(x, g)
    torch.testing.assert_close(model(x * 1000 + 7, g), y * 1000 + 7, rtol=1e-4, atol=1e-2)


def test_flat_target_stays_flat_and_finite():
    model = create_model("pac_upsampler_lite", factor=4)
    for p in model.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    x = torch.full((1, 1, 6, 6), 3.0)
    y = model(x, torch.rand(1, 3, 24, 24))
    assert torch.isfinite(y).all()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = create_model("pac_upsampler_lite", factor=8)
    x, g = _inputs(factor=8)
    target = torch.rand(2, 1, 40, 56) * 30
    for _ in range(2):  # the first step moves the zero-initialised head off zero
        model.zero_grad()
        loss = (model(x, g) - target).square().mean()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 1e-3 * p.grad.sign()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_jbu_model_matches_the_op():
    x, g = _inputs(factor=4)
    model = create_model("jbu", factor=4, kernel_size=3, sigma_space=0.75, sigma_color=0.2)
    torch.testing.assert_close(model(x, g), joint_bilateral_upsample(x, g, 3, 0.75, 0.2))
    assert set(model.state_dict()) == {"sigma_space", "sigma_color"}


def test_interpolation_models():
    x, g = _inputs(factor=4)
    torch.testing.assert_close(create_model("bicubic", factor=4)(x, g),
                               F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
    torch.testing.assert_close(create_model("bilinear", factor=4)(x, g),
                               F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False))


@pytest.mark.parametrize("name", ["pac_upsampler_lite", "djf", "bicubic", "jbu"])
def test_bad_inputs_name_the_argument(name):
    model = create_model(name, factor=4)
    x, g = _inputs(factor=4)
    with pytest.raises(ValueError, match="guide: size 20x27 must be factor 4"):
        model(x, g[..., :-1])
    with pytest.raises(ValueError, match="target_lr: this model upsamples 1-channel maps, got 2"):
        model(torch.cat([x, x], 1), g)
    with pytest.raises(ValueError, match="guide: expected 3"):
        model(x, g[:, :1])
    with pytest.raises(ValueError, match="guide: batch 1 differs"):
        model(x, g[:1])
    with pytest.raises(ValueError, match="target_lr: expected a"):
        model(x[0], g)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(bad, g)


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        GuidedUpsampler(2)(torch.rand(1, 1, 2, 2), torch.rand(1, 3, 4, 4))


def test_aligned_guide_sampling_looks_where_the_samples_came_from():
    """Low-res sample q comes from high-res pixel s*q + (s-1)//2: every PAC^T must see the guide
    of that pixel at the output position that stands for q."""
    factor, shift = 8, 3
    model = create_model("pac_upsampler_lite", factor=factor)
    seen = []
    for up in model.upconvs:
        up.register_forward_pre_hook(lambda mod, args: seen.append(args[1].detach()))
    qy, qx = 2, 3
    guide = torch.zeros(1, 3, 6 * factor, 6 * factor)
    guide[0, 0, factor * qy + shift, factor * qx + shift] = 1.0  # a red marker on sample (2, 3)
    model(torch.rand(1, 1, 6, 6), guide)
    for stage, g in enumerate(seen):  # output resolutions 12, 24, 48: sample q sits at 2^(stage+1) q
        r = 2 ** (stage + 1)
        channel0 = g[0, 0]
        assert channel0.shape == (6 * r, 6 * r)
        y, x = divmod(int(channel0.argmax()), channel0.shape[1])
        assert (y, x) == (r * qy, r * qx), stage


def test_colour_init_makes_kernels_bilateral_from_the_start():
    model = create_model("pac_upsampler_lite", factor=8)
    g = torch.rand(1, 3, 32, 32)
    features = model.guidance((g - 0.45) / 0.25)
    for s in range(3):  # first three channels of each slice: RGB / 0.1 up to a constant
        diff = features[0, s * 12:s * 12 + 3] - g[0] / 0.1
        torch.testing.assert_close(diff, diff.mean().expand_as(diff), atol=1e-4, rtol=0)
    plain = create_model("pac_upsampler_lite", factor=8, guide_init_sigma=None)
    assert plain.guidance(g).std() < 0.5 * features.std()


def test_guide_sampling_option_is_checked():
    with pytest.raises(ValueError, match="guide_sampling"):
        create_model("pac_upsampler", factor=4, guide_sampling="nearest")
    bilinear = create_model("pac_upsampler", factor=4, guide_sampling="bilinear")
    x, g = _inputs(factor=4)
    assert bilinear(x, g).shape == (2, 1, 20, 28)
