"""The embedding network: model card, output stride 8, unit embeddings, semantic head, errors."""

import pytest
import torch

from pixelwise.models import count_parameters, create_model
from pixelwise.report.instances import embedding_to_rgb, instance_image, instance_overlay


@pytest.mark.parametrize("width, expected", [(1.0, 5_727_910), (0.5, 1_436_278)])
def test_model_card(width, expected):
    model = create_model("embedding_drn", embedding_dim=64, num_classes=6, width=width)
    assert count_parameters(model) == expected


def test_outputs_at_stride_8_and_on_the_sphere():
    torch.manual_seed(0)
    model = create_model("embedding_drn", embedding_dim=16, num_classes=4, width=0.25).eval()
    out = model(torch.rand(2, 3, 64, 96))
    assert out["embedding"].shape == (2, 16, 8, 12)
    assert out["semantic"].shape == (2, 4, 8, 12)
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(2, 8, 12), atol=1e-5)


def test_no_semantic_head_and_boundary_dimension():
    model = create_model("embedding_drn", embedding_dim=3, num_classes=0, width=0.25).eval()
    out = model(torch.rand(1, 3, 40, 40))
    assert set(out) == {"embedding"} and out["embedding"].shape == (1, 3, 5, 5)


def test_dilated_stages_keep_resolution_and_grow_receptive_field():
    # Stages 3 and 4 use dilation 2 and 4 rather than strides.
    model = create_model("embedding_drn", embedding_dim=8, width=0.25)
    dilations = [m.dilation for m in model.stages[3].modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    strides = [m.stride for m in model.stages[2:].modules() if isinstance(m, torch.nn.Conv2d)]
    assert set(dilations) == {(4, 4)} and set(strides) == {(1, 1)}


@pytest.mark.parametrize("kwargs, match", [({"embedding_dim": 1}, "embedding_dim"), ({"width": 0}, "width"),
                                           ({"blocks": 0}, "blocks")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("embedding_drn", **kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="x must be"):
        create_model("embedding_drn", width=0.25)(torch.rand(3, 32, 32))


def test_embedding_to_rgb_identity_for_3d_and_fixed_projection():
    e = torch.nn.functional.normalize(torch.randn(3, 4, 5), dim=0)
    rgb = embedding_to_rgb(e)
    assert rgb.shape == (4, 5, 3) and rgb.dtype.name == "uint8"
    expected = ((e.permute(1, 2, 0) + 1) * 127.5).round()
    assert (torch.from_numpy(rgb).float() - expected).abs().max() <= 1
    e64 = torch.nn.functional.normalize(torch.randn(64, 6, 6), dim=0)
    assert (embedding_to_rgb(e64, seed=3) == embedding_to_rgb(e64, seed=3)).all()
    # Two pixels with the same embedding get the same colour; antipodal ones mirrored colours.
    e64[:, 0, 1] = e64[:, 0, 0]
    rgb = embedding_to_rgb(e64).astype(int)
    assert (rgb[0, 0] == rgb[0, 1]).all()
    with pytest.raises(ValueError, match="at least 3"):
        embedding_to_rgb(torch.randn(2, 4, 4))


def test_instance_figures():
    labels = torch.zeros(6, 6, dtype=torch.int64).numpy()
    labels[1:3, 1:3] = 1
    labels[4:, 4:] = 2
    labels[0, 5] = 255
    img = instance_image(labels)
    assert (img[0, 0] == 0).all() and (img[0, 5] == 255).all() and not (img[1, 1] == img[4, 4]).all()
    over = instance_overlay(torch.rand(6, 6, 3).numpy(), labels.clip(0, 2))
    assert over.shape == (6, 6, 3) and (over[1, 1] == 255).all()  # border of instance 1
    with pytest.raises(ValueError, match="same size"):
        instance_overlay(torch.rand(5, 6, 3).numpy(), labels)
