"""The block-swappable SqueezeSegV3 of the paper's Table-3 ablation (Xu et al. 2020).

Registered as ``ssgv3_ablation_21`` and ``ssgv3_ablation_53``;
``create_model("ssgv3_ablation_21", block="plain", width=0.25)``. It follows the paper's prose, and
every residual block's first convolution is swappable, so the ablation's variants (plain, SAC-S,
-IS, -SK, -ISK, PAC, SE, CBAM, CAM) differ in exactly one operator. The network the authors
released and benchmarked is :mod:`pixelwise.models.squeezeseg` (``ssgv3_21`` / ``ssgv3_53``); it
differs in where the SAC blocks sit, the decoder and the heads (see that module).

Input and raw attention input
    ``x`` is the normalised ``(B, 5, H, W)`` range image (range, x, y, z, remission). The raw
    input ``X0`` of every attention branch is ``x[:, 1:4]`` (normalised x, y, z); each adaptive
    layer gets it resized with nearest-neighbour sampling to its own resolution (no coordinate is
    invented between two surfaces). ``W`` must be a multiple of 8 (three width halvings); ``H``
    is free because it is never reduced.

Backbone (RangeNet / Darknet with the SqueezeSegV3 changes)
    * Stem: 3x3 conv ``in -> stem`` + BN + LeakyReLU(0.1) at full resolution.
    * Five stages with ``(64, 128, 256, 256, 256) * width`` channels (rounded, at least 4; the
      stem is scaled by ``width`` too) and ``(1, 1, 2, 2, 1)`` (depth 21) or ``(1, 2, 8, 8, 4)``
      (depth 53) residual blocks. Each stage opens with a 3x3 conv + BN + LeakyReLU whose stride
      is *width only*: ``(1,1), (1,2), (1,2), (1,2), (1,1)``. RangeNet's last two downsamplings
      are removed, so the stage outputs lie at width scales 1, 1/2, 1/4, 1/8, 1/8 and the 64 rows
      of a LiDAR image are never collapsed (bottleneck 64 x 256 for a 64 x 2048 scan).
      ``Dropout2d(dropout)`` closes every stage.
    * Residual block (:class:`SacResidualBlock`): two stacked 3x3 convs C -> C,
      ``out = LReLU(BN(conv2(LReLU(BN(first(x)))))) + x``. The paper swaps the *first* conv; this
      implementation keeps RangeNet's "two convs" shape but uses two 3x3 C -> C convs (not
      Darknet's 1x1 bottleneck then 3x3) so that every ``block`` variant changes exactly one
      operator. ``block`` picks ``first``:

      ========  ===============================================================================
      plain     ``nn.Conv2d`` 3x3 (RangeNet-style baseline)
      S/IS/SK/  ``SacConv2d`` 3x3 of that variant; attention = 7x7 conv on X0 + BN + sigmoid
      ISK       (ISK is SqueezeSegV3's choice)
      PAC       ``PacConv2d`` 3x3, Gaussian kernel of a learnable 1x1 embedding of X0 (3 -> 3,
                initialised to the identity, so the initial kernel is ``exp(-|dxyz|^2 / 2)`` of
                normalised coordinates): PAC = SAC-SK with a Gaussian of feature differences
      SE        squeeze-excitation on the block input, then a plain conv (SE = SAC-I)
      CBAM      CBAM on the block input, then a plain conv (SAC-I then SAC-S)
      CAM       SqueezeSegV2's CAM on the block input, then a plain conv (CAM = SAC-IS)
      ========  ===============================================================================

      The first conv is stored as ``conv1`` for every type (``SacConv2d`` and ``PacConv2d``
      subclass ``nn.Conv2d``), so a ``plain`` state dict loads into an ``SK``/``ISK`` block with
      ``strict=False`` (only the attention weights are extra). Convs followed by BN have no bias.

Shared layers (:mod:`pixelwise.nn.blocks`)
    Every conv + BN + LeakyReLU (stem, stage openings, decoder) is a
    :func:`~pixelwise.nn.blocks.conv_norm_act`; the residual block subclasses
    :class:`~pixelwise.nn.blocks.BasicBlock`.

Decoder and heads
    Three upsampling blocks 1/8 -> 1/4 -> 1/2 -> 1: ``ConvTranspose2d`` kernel (1, 4), stride
    (1, 2), padding (0, 1) (exactly doubles the width, keeps the height) to the skip's channels,
    BN, LeakyReLU, *add* the encoder skip (outputs of stages 3, 2, 1), then 3x3 conv + BN +
    LeakyReLU. Five heads (``Dropout2d`` + 1x1 conv to ``num_classes`` logits) at width scales
    ``head_scales = (1, 2, 4, 8, 8)``: the final decoder output (the prediction), the decoder
    outputs at 1/2 and 1/4, and the encoder outputs of stage 5 and stage 4. The last four are the
    multi-layer supervision of Eq. 5 (labels downsampled 1x, 2x, 4x, 8x, 8x along the width).
    ``forward(x, aux)`` returns all five when ``aux`` (default: ``self.training``), else the
    ``(B, num_classes, H, W)`` prediction.

Model card (``num_classes=20, in_channels=5``, width 1; pinned in ``tests/test_squeezeseg_ablation.py``)
    ============  ==========  ==========  ========================
    model         plain       ISK         ISK extra params
    ============  ==========  ==========  ========================
    ..._21         9,064,132  11,051,332  +1,987,200 (+21.9 %)
    ..._53        27,069,636  34,413,636  +7,344,000 (+27.1 %)
    ============  ==========  ==========  ========================

    Each ISK layer adds a ``3 -> 9C`` 7x7 conv (with bias) and a ``9C`` BN, ``9C * (3*49 + 1) +
    2 * 9C = 1350 C`` parameters, one layer per residual block. The paper reports +14.9 % for
    SAC-ISK on SSGV3-21 (Table 1); the gap comes from its Darknet blocks (1x1 bottleneck then 3x3)
    against the two full 3x3 convs used here, and from its exact channel bookkeeping, which the
    paper does not give. Other blocks on ssgv3_ablation_21: S 9,065,182; IS 9,284,932; SK 9,073,582;
    PAC 9,064,216; SE 9,109,216; CBAM 9,109,909; CAM 9,109,216.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.blocks import BasicBlock, conv_norm_act, scale_channels
from ..nn.pac import PacConv2d
from ..nn.sac import CAM, CBAM, SacConv2d, SqueezeExcitation
from .registry import register_model
from .squeezeseg import check_range_image

__all__ = ["BLOCK_TYPES", "SacResidualBlock", "SqueezeSegV3Ablation", "ssgv3_ablation_21", "ssgv3_ablation_53"]

BLOCK_TYPES = ("plain", "S", "IS", "SK", "ISK", "PAC", "SE", "CBAM", "CAM")
STAGE_CHANNELS = (64, 128, 256, 256, 256)
STAGE_BLOCKS = {21: (1, 1, 2, 2, 1), 53: (1, 2, 8, 8, 4)}
STAGE_STRIDES = ((1, 1), (1, 2), (1, 2), (1, 2), (1, 1))
NEGATIVE_SLOPE = 0.1
MIN_CHANNELS = 4
_SAC = ("S", "IS", "SK", "ISK")
_PRE_ATTENTION = {"SE": SqueezeExcitation, "CBAM": CBAM, "CAM": CAM}


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)


def _resize_raw(raw: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    size = tuple(like.shape[-2:])
    return raw if tuple(raw.shape[-2:]) == size else F.interpolate(raw, size=size, mode="nearest")


def _check_block(block) -> None:
    if block not in BLOCK_TYPES:
        raise ValueError(f"block must be one of {BLOCK_TYPES}, got {block!r}")


class SacResidualBlock(BasicBlock):
    """SqueezeSegV3 residual block: ``LReLU(BN(conv2(LReLU(BN(first(x)))))) + x``.

    ``block`` selects ``first`` (see the module docstring): ``"plain"`` 3x3 conv, a SAC variant
    (``"S"``, ``"IS"``, ``"SK"``, ``"ISK"``), ``"PAC"``, or a plain conv preceded by ``"SE"``,
    ``"CBAM"`` or ``"CAM"`` attention on the block input. Called as ``block(x, raw)`` where
    ``raw`` is ``X0`` at any resolution (resized here with nearest-neighbour sampling).

    A :class:`pixelwise.nn.blocks.BasicBlock` (identity shortcut, activation before the add)
    whose first convolution is the adaptive one.

    Example:
        >>> import torch
        >>> blk = SacResidualBlock(16, "ISK")
        >>> blk(torch.randn(2, 16, 8, 32), torch.randn(2, 3, 8, 64)).shape
        torch.Size([2, 16, 8, 32])
    """

    def __init__(self, channels: int, block: str = "ISK", raw_channels: int = 3, attention_kernel_size: int = 7,
                 reduction: int = 16):
        _check_block(block)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        super().__init__(channels, channels, act=_lrelu, act_after_add=False,
                         make_conv1=partial(self._build_first, channels, block, raw_channels, attention_kernel_size,
                                            reduction))
        self.block = block
        self.channels = channels
        self.raw_channels = raw_channels

    def _build_first(self, channels, block, raw_channels, attention_kernel_size, reduction) -> nn.Module:
        """``conv1`` for ``block``, after registering what it needs (``pre_attention``, ``guide``)
        ahead of it, where checkpoints have them."""
        self.pre_attention = _PRE_ATTENTION[block](channels, reduction) if block in _PRE_ATTENTION else None
        self.guide = None
        if block in _SAC:
            return SacConv2d(channels, channels, 3, padding=1, bias=False, variant=block,
                             raw_channels=raw_channels, attention_kernel_size=attention_kernel_size)
        if block == "PAC":
            self.guide = nn.Conv2d(raw_channels, raw_channels, 1)
            with torch.no_grad():
                self.guide.weight.copy_(torch.eye(raw_channels).view(raw_channels, raw_channels, 1, 1))
                self.guide.bias.zero_()
            return PacConv2d(channels, channels, 3, padding=1, bias=False, kernel_type="gaussian")
        return nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def first(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The (possibly adaptive) first convolution."""
        if self.block in _SAC:
            return self.conv1(x, _resize_raw(raw, x))
        if self.block == "PAC":
            return self.conv1(x, self.guide(_resize_raw(raw, x)))
        if self.pre_attention is not None:
            x = self.pre_attention(x)
        return self.conv1(x)

    def forward(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return self.forward_after_conv1(self.first(x, raw), x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, block={self.block!r}"


class _Stage(nn.Module):
    """Width-only strided 3x3 conv + BN + LReLU, residual blocks, Dropout2d."""

    def __init__(self, c_in, c_out, stride, n_blocks, block, raw_channels, attention_kernel_size, dropout):
        super().__init__()
        self.down = conv_norm_act(c_in, c_out, 3, stride, act=_lrelu)
        self.blocks = nn.ModuleList(SacResidualBlock(c_out, block, raw_channels, attention_kernel_size)
                                    for _ in range(n_blocks))
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x, raw):
        x = self.down(x)
        if self.blocks:
            raw = _resize_raw(raw, x)  # once per stage; the blocks then skip their own resize
        for blk in self.blocks:
            x = blk(x, raw)
        return self.dropout(x)


class _UpBlock(nn.Module):
    """Transposed conv (1, 4) / (1, 2) doubling the width, BN, LReLU, + skip, 3x3 conv + BN + LReLU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.up = conv_norm_act(c_in, c_out, (1, 4), stride=(1, 2), padding=(0, 1), act=_lrelu,
                                conv_layer=nn.ConvTranspose2d)
        self.conv = conv_norm_act(c_out, c_out, 3, act=_lrelu)

    def forward(self, x, skip):
        return self.conv(self.up(x) + skip)


def _head(c_in, num_classes, dropout) -> nn.Sequential:
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(c_in, num_classes, 1))


class SqueezeSegV3Ablation(nn.Module):
    """The ablation's SqueezeSegV3-21/53 for ``(B, in_channels, H, W)`` range images, ``W`` a multiple of 8.

    Args:
        num_classes: logits per pixel (20 for SemanticKITTI with class 0 "unlabeled").
        in_channels: input channels (range, x, y, z, remission = 5); channels 1:4 are the raw
            xyz input ``X0`` of the attention branches, so at least 4.
        depth: 21 or 53 (blocks per stage ``(1,1,2,2,1)`` or ``(1,2,8,8,4)``).
        block: first conv of every residual block, one of :data:`BLOCK_TYPES`.
        width: channel multiplier (stage channels ``round(c * width)``, at least 4).
        stem_channels: stem width before the multiplier.
        dropout: ``Dropout2d`` probability after each stage and before each head.
        attention_kernel_size: kernel of the SAC attention conv on ``X0`` (7 in the paper).

    Attributes:
        head_scales: ``(1, 2, 4, 8, 8)``, the width downsampling factor of each head.

    Example:
        >>> import torch
        >>> net = SqueezeSegV3Ablation(depth=21, width=0.125).eval()
        >>> net(torch.randn(1, 5, 16, 64)).shape
        torch.Size([1, 20, 16, 64])
        >>> [t.shape[-1] for t in net(torch.randn(1, 5, 16, 64), aux=True)]
        [64, 32, 16, 8, 8]
    """

    head_scales = (1, 2, 4, 8, 8)

    def __init__(self, num_classes: int = 20, in_channels: int = 5, depth: int = 21, block: str = "ISK",
                 width: float = 1.0, stem_channels: int = 32, dropout: float = 0.01, attention_kernel_size: int = 7):
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"depth must be one of {tuple(STAGE_BLOCKS)}, got {depth!r}")
        _check_block(block)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 4:
            raise ValueError(f"in_channels must be an int >= 4 (channels 1:4 are x, y, z), got {in_channels!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        if isinstance(stem_channels, bool) or not isinstance(stem_channels, int) or stem_channels < 1:
            raise ValueError(f"stem_channels must be a positive int, got {stem_channels!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.num_classes, self.in_channels, self.depth, self.block = num_classes, in_channels, depth, block
        self.width = float(width)
        ch = [scale_channels(c, width, MIN_CHANNELS) for c in STAGE_CHANNELS]
        self.stage_channels = tuple(ch)
        stem = scale_channels(stem_channels, width, MIN_CHANNELS)
        raw_channels = 3

        self.stem = conv_norm_act(in_channels, stem, 3, act=_lrelu)
        c_prev, stages = stem, []
        for c, s, n in zip(ch, STAGE_STRIDES, STAGE_BLOCKS[depth]):
            stages.append(_Stage(c_prev, c, s, n, block, raw_channels, attention_kernel_size, dropout))
            c_prev = c
        self.stages = nn.ModuleList(stages)
        # 1/8 -> 1/4 (skip: stage 3), 1/4 -> 1/2 (stage 2), 1/2 -> 1 (stage 1).
        self.decoder = nn.ModuleList([_UpBlock(ch[4], ch[2]), _UpBlock(ch[2], ch[1]), _UpBlock(ch[1], ch[0])])
        # Heads in head_scales order: decoder 1x, decoder 1/2, decoder 1/4, stage 5, stage 4.
        self.heads = nn.ModuleList(_head(c, num_classes, dropout) for c in (ch[0], ch[1], ch[2], ch[4], ch[3]))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the five encoder stages (width scales 1, 1/2, 1/4, 1/8, 1/8)."""
        check_range_image(x, self.in_channels)
        raw = x[:, 1:4]
        y, outs = self.stem(x), []
        for stage in self.stages:
            y = stage(y, raw)
            outs.append(y)
        return outs

    def forward(self, x: torch.Tensor, aux: bool | None = None):
        """Logits ``(B, num_classes, H, W)``; with ``aux`` (default ``self.training``) the list of
        the five heads' logits at width scales ``1, 1/2, 1/4, 1/8, 1/8``."""
        s1, s2, s3, s4, s5 = self.features(x)
        d4 = self.decoder[0](s5, s3)
        d2 = self.decoder[1](d4, s2)
        d1 = self.decoder[2](d2, s1)
        if aux is None:
            aux = self.training
        if not aux:
            return self.heads[0](d1)
        return [head(f) for head, f in zip(self.heads, (d1, d2, d4, s5, s4))]

    def extra_repr(self) -> str:
        return f"depth={self.depth}, block={self.block!r}, width={self.width}, num_classes={self.num_classes}"


def _fixed_depth(depth: int, other: int):
    """A registered builder whose depth is fixed by its name (a sidecar may still record it)."""

    def build(**kwargs) -> SqueezeSegV3Ablation:
        given = kwargs.pop("depth", depth)
        if given != depth:
            raise ValueError(f"depth is fixed to {depth} by ssgv3_ablation_{depth}, got {given!r}; use "
                             f"ssgv3_ablation_{other} or SqueezeSegV3Ablation(depth=...)")
        return SqueezeSegV3Ablation(depth=depth, **kwargs)

    return build


ssgv3_ablation_21 = register_model("ssgv3_ablation_21", task="lidar")(_fixed_depth(21, 53))
ssgv3_ablation_53 = register_model("ssgv3_ablation_53", task="lidar")(_fixed_depth(53, 21))
