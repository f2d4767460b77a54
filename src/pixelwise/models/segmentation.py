"""Semantic segmentation network: a dilated residual FCN, optionally hot-swapped and with a PAC-CRF.

Registered as ``seg_fcn``: ``create_model("seg_fcn", num_classes=8, crf={"kernels": [[5, 32]]})``.

* Backbone: the dilated ResNet of :mod:`pixelwise.models.pixel_embedding`
  (:func:`pixelwise.nn.blocks.dilated_resnet`: stem at 1/2, four stages of basic blocks, output
  stride 8 with dilation 2 and 4 in the last two stages).
* Classifier: 3x3 conv + BN + ReLU + 1x1 conv to ``num_classes`` logits at 1/8, upsampled
  bilinearly to the input size -- the unaries. Coarse logits blur object boundaries, which is
  what a CRF on the full-resolution image can repair.
* ``hot_swap`` (Su et al. Sec. 6): ``{"layers": [...], "guide": "stem", "scale": 1e-4}`` turns
  those convolutions into PAC layers guided by the stem output (:func:`pixelwise.nn.convert_to_pac`);
  the default layers are the last convolution of stages 2-4, as the paper swaps the last conv of
  FCN's last three groups with conv2_2 (also at 1/2) as guide.
* ``crf``: ``{"kernels": [[5, 32]], "steps": 5, "compat": "4d", "blur": 1, "loose": False}`` adds a
  :class:`~pixelwise.nn.PacCRF` (or :class:`~pixelwise.nn.PacCRFLoose`) on the unaries, guided
  by the input RGB.

``forward(image)`` with ``image (B, 3, H, W)`` in [0, 1] returns ``{"logits": (B, L, H, W)}`` and,
with a CRF, ``"log_q"``: the CRF's log marginals. To train the CRF alone (the paper's first
stage), freeze ``backbone`` and ``classifier`` (the engine's ``Stage(frozen=...)`` does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import PacCRF, PacCRFLoose, PairwiseKernel, convert_to_pac
from ..nn.blocks import conv_norm_act, dilated_resnet
from .registry import register_model

DEFAULT_HOT_SWAP_GUIDE = "backbone.stem"


def default_hot_swap_layers(blocks: int) -> list[str]:
    """The last convolution of stages 2, 3 and 4 of the backbone."""
    return [f"backbone.stages.{s}.{blocks - 1}.conv2" for s in (1, 2, 3)]


class DilatedBackbone(nn.Module):
    """Dilated residual network at output stride 8 (:func:`pixelwise.nn.blocks.dilated_resnet`, the
    backbone of :mod:`pixelwise.models.pixel_embedding` too)."""

    def __init__(self, in_channels: int = 3, width: float = 0.5, blocks: int = 2, stem: int = 32) -> None:
        super().__init__()
        self.stem, self.stages, channels = dilated_resnet(in_channels, width, blocks, stem)
        self.out_channels, self.head_channels = channels[-1], channels[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class SegmentationNet(nn.Module):
    """Dilated residual FCN producing full-resolution unaries, with optional hot-swap and PAC-CRF."""

    def __init__(self, num_classes: int, width: float = 0.5, blocks: int = 2, in_channels: int = 3,
                 crf: dict | None = None, hot_swap: dict | None = None) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: must be an int >= 2, got {num_classes!r}")
        if not width > 0 or blocks < 1:
            raise ValueError(f"width must be > 0 and blocks >= 1, got {width}, {blocks}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.backbone = DilatedBackbone(in_channels, width, blocks)
        head = self.backbone.head_channels
        self.classifier = nn.Sequential(conv_norm_act(self.backbone.out_channels, head, 3),
                                        nn.Conv2d(head, num_classes, 1))
        self.hot_swap = dict(hot_swap) if hot_swap is not None else None  # {} = the default swap
        if self.hot_swap is not None:
            unknown = set(self.hot_swap) - {"layers", "guide", "scale"}
            if unknown:
                raise ValueError(f"hot_swap: unknown keys {sorted(unknown)} (expected layers, guide, scale)")
            convert_to_pac(self, self.hot_swap.get("layers") or default_hot_swap_layers(blocks),
                           self.hot_swap.get("guide", DEFAULT_HOT_SWAP_GUIDE), self.hot_swap.get("scale", 1e-4))
        self.crf = None
        if crf:
            crf = dict(crf)
            unknown = set(crf) - {"kernels", "steps", "compat", "blur", "loose"}
            if unknown:
                raise ValueError(f"crf: unknown keys {sorted(unknown)} (expected kernels, steps, compat, blur, loose)")
            compat, blur = crf.get("compat", "4d"), crf.get("blur", 1)
            kernels = [PairwiseKernel(int(k), int(d), blur, compat) for k, d in crf.get("kernels", [[5, 32]])]
            cls = PacCRFLoose if crf.get("loose", False) else PacCRF
            self.crf = cls(num_classes, kernels, steps=crf.get("steps", 5), guide_channels=in_channels)

    def unaries(self, image: torch.Tensor) -> torch.Tensor:
        coarse = self.classifier(self.backbone(image))
        return F.interpolate(coarse, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(image, torch.Tensor) or image.dim() != 4:
            raise ValueError(f"image must be a (B, C, H, W) tensor, got "
                             f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
        if image.shape[1] != self.in_channels:
            raise ValueError(f"image must have {self.in_channels} channels (RGB), got {image.shape[1]}")
        logits = self.unaries(image)
        out = {"logits": logits}
        if self.crf is not None:
            out["log_q"] = self.crf(logits, image)
        return out


@register_model("seg_fcn", task="segment")
def seg_fcn(**kwargs) -> SegmentationNet:
    return SegmentationNet(**kwargs)
