"""The pixel-embedding network of Kong & Fowlkes 2018: a dilated residual network at output stride 8.

Registered as ``embedding_drn``: ``create_model("embedding_drn", embedding_dim=64, num_classes=6)``.

Layout (the paper's ResNet with its last two poolings replaced by atrous convs, scaled down; built
by :func:`pixelwise.nn.blocks.dilated_resnet`, shared with :mod:`pixelwise.models.segmentation`)
    * Stem: 3x3 conv stride 2 + BN + ReLU, then a 3x3 conv (``stem`` channels) -- 1/2.
    * Four stages of basic residual blocks (two 3x3 convs, BN, identity or 1x1 projection
      shortcut) with ``(64, 128, 256, 256) * width`` channels and ``blocks`` blocks each. Stages
      1 and 2 open with stride 2 (1/4, 1/8); stages 3 and 4 keep 1/8 and use dilation 2 and 4
      instead of further strides, so the receptive field keeps growing without losing
      resolution.
    * Embedding head: 3x3 conv + BN + ReLU (:func:`~pixelwise.nn.blocks.conv_norm_act`), 1x1 conv
      to ``embedding_dim``, L2 normalisation onto the unit sphere (the paper's normalisation
      layer before the cosine similarity).
    * Optional semantic head (``num_classes > 0``): 3x3 conv + BN + ReLU + 1x1 conv to logits,
      trained with cross-entropy beside the embedding loss (Sec. 5.4); its map labels the
      extracted instances by majority vote.

``forward(x)`` returns ``{"embedding": (B, D, H/8, W/8)}`` (unit vectors) plus ``"semantic"``
logits at the same resolution when there is a semantic head. Outputs stay at 1/8: the loss
samples pixels from a bilinearly upsampled map, and instance extraction runs mean shift on the
coarse map and assigns full-resolution pixels afterwards (:mod:`pixelwise.grouping.extract`).
``D = 64`` for instances (room for ``2 D`` antipodal groups at margin 0.5), ``D = 3`` for the
boundary variant (an RGB-viewable sphere).

Model card (pinned in ``tests/test_pixel_embedding_model.py``): width 1, blocks 2, D 64, 6
classes -> 5,727,910 parameters; width 0.5 -> 1,436,278.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.blocks import conv_norm_act, dilated_resnet
from .registry import register_model

OUTPUT_STRIDE = 8


class PixelEmbeddingNet(nn.Module):
    """Dilated residual network mapping an image to unit pixel embeddings at 1/8 resolution."""

    def __init__(self, embedding_dim: int = 64, num_classes: int = 0, in_channels: int = 3, width: float = 1.0,
                 blocks: int = 2, stem: int = 32) -> None:
        super().__init__()
        if embedding_dim < 2:
            raise ValueError(f"embedding_dim must be >= 2, got {embedding_dim}")
        if num_classes < 0 or in_channels < 1 or blocks < 1:
            raise ValueError(f"num_classes must be >= 0, in_channels and blocks >= 1, got {num_classes}, "
                             f"{in_channels}, {blocks}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.embedding_dim, self.num_classes = embedding_dim, num_classes
        self.stem, self.stages, channels = dilated_resnet(in_channels, width, blocks, stem)
        cin, head = channels[-1], channels[1]
        self.embedding_head = nn.Sequential(conv_norm_act(cin, head, 3), nn.Conv2d(head, embedding_dim, 1))
        self.semantic_head = None
        if num_classes:
            self.semantic_head = nn.Sequential(conv_norm_act(cin, head, 3), nn.Conv2d(head, num_classes, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
        features = self.stages(self.stem(x))
        out = {"embedding": F.normalize(self.embedding_head(features), dim=1)}
        if self.semantic_head is not None:
            out["semantic"] = self.semantic_head(features)
        return out


@register_model("embedding_drn", task="instances")
def embedding_drn(**kwargs) -> PixelEmbeddingNet:
    return PixelEmbeddingNet(**kwargs)
