"""SqueezeSegV3 (Xu et al. 2020) as the authors released and benchmarked it.

Registered as ``ssgv3_21`` and ``ssgv3_53``; ``create_model("ssgv3_21")`` is the released
SSGV3-21 (9,247,140 parameters), ``create_model("ssgv3_53")`` SSGV3-53 (25,959,588). Official
checkpoints load through :mod:`pixelwise.tasks.lidar.official`. The paper's prose describes a
somewhat different network; its block-swappable form for the Table-3 ablation is
:mod:`pixelwise.models.squeezeseg_ablation` (``ssgv3_ablation_21`` / ``_53``).

Input
    ``x`` is the normalised ``(B, 5, H, W)`` range image (range, x, y, z, remission);
    ``x[:, 1:4]`` (normalised xyz) drives every attention. ``W`` must be a multiple of 8.

Backbone (``stem``, ``stages``)
    * Stem: 3x3 conv ``5 -> 32`` (no bias), BN, LeakyReLU(0.1).
    * Five stages, ``(in, out)`` channels (32, 64), (64, 128), (128, 256), (256, 256), (256, 256),
      with 1,1,2,2,1 (SSGV3-21) or 1,2,8,8,4 (SSGV3-53) :class:`~pixelwise.nn.SacBlock` s that run
      at the stage's *input* channels and width. Stages 1-3 then end with a 3x3 conv (no bias)
      of stride (1, 2) to the output channels, BN, LeakyReLU(0.1); stages 4-5 have no conv (their
      in and out channels agree). ``Dropout2d`` closes every stage.
    * After each downsampling stage the xyz channels are resized to the new width by bilinear
      interpolation with ``align_corners=True``, as released.
    * The input of each downsampling stage (the stem's output, then stage 1's and 2's) is kept,
      detached, as the skip of the decoder block at that width: no gradient flows through skips.

Decoder (``decoder``)
    Five blocks, ``(in, out)`` 256->256, 256->256, 256->128, 128->64, 64->32, width strides
    1, 1, 2, 2, 2. A stride-1 block opens with a 3x3 conv, a stride-2 block with a
    ``ConvTranspose2d`` of kernel (1, 4), stride (1, 2), padding (0, 1) (both with bias); then BN,
    LeakyReLU(0.1) and a residual block (1x1 conv ``out -> in``, BN, LeakyReLU, 3x3 conv ``in ->
    out``, BN, LeakyReLU, plus its input). After an upsampling block the skip of that width is
    added. ``Dropout2d`` on the last block's output.

Heads (``heads``, in :attr:`SqueezeSegV3.head_scales` order 1, 2, 4, 8, 8)
    ``Dropout2d`` then a conv to ``num_classes`` logits: 3x3 on decoder block 5 (32 ch, full
    width), 1x1 on block 4 (64, W/2), block 3 (128, W/4), block 2 (256, W/8), block 1 (256, W/8).
    ``heads[0]`` is the prediction. The release returns their softmax and trains with the NLL of
    its log; here they return logits, and the loss takes ``log_softmax``.

Batch norm momentum is 0.01 (the release's ``bn_d``) in the stem, stage convs and decoder, and 0.1
inside the SAC blocks. ``width`` scales every channel count (1 is the release).

Parameter count at width 1 (pinned in ``tests/test_squeezeseg_official.py``): SSGV3-21 9,247,140
(backbone 6,129,120, decoder 3,098,080, heads 19,940); SSGV3-53 25,959,588.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_float, check_int, check_positive_int
from ..nn.blocks import conv_norm_act, scale_channels
from ..nn.sac import SacBlock
from .registry import register_model

__all__ = ["SqueezeSegV3", "check_range_image", "ssgv3_21", "ssgv3_53"]

STAGE_CHANNELS = ((32, 64), (64, 128), (128, 256), (256, 256), (256, 256))
STAGE_BLOCKS = {21: (1, 1, 2, 2, 1), 53: (1, 2, 8, 8, 4)}
STAGE_DOWNSAMPLES = (True, True, True, False, False)
DECODER_CHANNELS = ((256, 256), (256, 256), (256, 128), (128, 64), (64, 32))
DECODER_UPSAMPLES = (False, False, True, True, True)
STEM_CHANNELS = 32
NEGATIVE_SLOPE = 0.1
BN_MOMENTUM = 0.01  # the release's bn_d (its SAC blocks keep PyTorch's 0.1)
MIN_CHANNELS = 4


def check_range_image(x, in_channels: int) -> None:
    """A ``(B, in_channels, H, W)`` floating-point range image whose width is a multiple of 8 (the
    three width halvings of both SqueezeSegV3 networks); the errors name ``input``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"input must have a floating-point dtype, got {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"input must be 4-D (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"input must have {in_channels} channels (range, x, y, z, remission), got shape "
                         f"{tuple(x.shape)}")
    if x.shape[-1] % 8 != 0 or x.shape[-1] == 0:
        raise ValueError(f"input width must be a multiple of 8 (three width halvings), got shape {tuple(x.shape)}")


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)


def _set_momentum(module: nn.Module, momentum: float) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
    return module


class EncoderStage(nn.Module):
    """SAC blocks at the input channels and width, then (when ``downsample``) a 3x3 conv of
    width stride 2 + BN + LeakyReLU to ``c_out``; ``Dropout2d`` last."""

    def __init__(self, c_in: int, c_out: int, n_blocks: int, downsample: bool, dropout: float):
        super().__init__()
        if not downsample and c_in != c_out:
            raise ValueError(f"a stage without downsampling keeps its channels, got {c_in} -> {c_out}")
        self.blocks = nn.ModuleList(SacBlock(c_in) for _ in range(n_blocks))
        self.down = _set_momentum(conv_norm_act(c_in, c_out, 3, (1, 2), act=_lrelu), BN_MOMENTUM) if downsample else None
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor, xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stage's output and the xyz channels at its width."""
        for block in self.blocks:
            x = block(x, xyz)
        if self.down is not None:
            x = self.down(x)
            xyz = F.interpolate(xyz, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=True)
        return self.dropout(x), xyz


class DecoderBlock(nn.Module):
    """3x3 conv (stride 1) or (1, 4) transposed conv (width x2), BN, LeakyReLU, then a residual
    block 1x1 ``out -> in`` / 3x3 ``in -> out`` with LeakyReLU before the add."""

    def __init__(self, c_in: int, c_out: int, upsample: bool):
        super().__init__()
        if upsample:
            self.up = conv_norm_act(c_in, c_out, (1, 4), stride=(1, 2), padding=(0, 1), act=_lrelu, bias=True,
                                    conv_layer=nn.ConvTranspose2d)
        else:
            self.up = conv_norm_act(c_in, c_out, 3, act=_lrelu, bias=True)
        self.residual = nn.Sequential(conv_norm_act(c_out, c_in, 1, act=_lrelu), conv_norm_act(c_in, c_out, 3, act=_lrelu))
        self.upsample = upsample
        _set_momentum(self, BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(x)
        return self.residual(y) + y


class SqueezeSegV3(nn.Module):
    """The released SqueezeSegV3-21/53 for ``(B, in_channels, H, W)`` range images, ``W`` a
    multiple of 8 (see the module docstring for the layer-by-layer description).

    Args:
        num_classes: logits per pixel (20 for SemanticKITTI, class 0 "unlabeled").
        in_channels: input channels (range, x, y, z, remission = 5); channels 1:4 are xyz.
        depth: 21 or 53.
        width: channel multiplier (1 = the release; other values for small CPU runs).
        dropout: ``Dropout2d`` probability after every stage, on the decoder output and before
            every head (0.01 in the release's yaml).

    Example:
        >>> import torch
        >>> net = SqueezeSegV3(depth=21, width=0.125).eval()
        >>> net(torch.randn(1, 5, 8, 64)).shape
        torch.Size([1, 20, 8, 64])
        >>> [t.shape[-1] for t in net(torch.randn(1, 5, 8, 64), aux=True)]
        [64, 32, 16, 8, 8]
    """

    head_scales = (1, 2, 4, 8, 8)

    def __init__(self, num_classes: int = 20, in_channels: int = 5, depth: int = 21, width: float = 1.0,
                 dropout: float = 0.01):
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"depth must be one of {tuple(STAGE_BLOCKS)}, got {depth!r}")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.in_channels = check_int(in_channels, "in_channels", min=4)
        self.width = check_float(width, "width", low=0, low_open=True)
        self.dropout_p = check_float(dropout, "dropout", low=0, high=1, high_open=True)
        self.depth = depth

        def ch(c: int) -> int:
            return scale_channels(c, width, MIN_CHANNELS)

        self.stem = _set_momentum(conv_norm_act(in_channels, ch(STEM_CHANNELS), 3, act=_lrelu), BN_MOMENTUM)
        self.stages = nn.ModuleList(
            EncoderStage(ch(c_in), ch(c_out), n, down, dropout)
            for (c_in, c_out), n, down in zip(STAGE_CHANNELS, STAGE_BLOCKS[depth], STAGE_DOWNSAMPLES))
        self.decoder = nn.ModuleList(DecoderBlock(ch(c_in), ch(c_out), up)
                                     for (c_in, c_out), up in zip(DECODER_CHANNELS, DECODER_UPSAMPLES))
        self.decoder_dropout = nn.Dropout2d(dropout)
        # head_scales order: decoder block 5 (3x3), 4, 3, 2, 1 (1x1).
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(ch(c), num_classes, k, padding=k // 2))
            for c, k in ((32, 3), (64, 1), (128, 1), (256, 1), (256, 1)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The bottleneck features (width W/8) and the detached skips at widths W, W/2, W/4."""
        check_range_image(x, self.in_channels)
        xyz = x[:, 1:4]
        y = self.stem(x)
        skips = []
        for stage in self.stages:
            if stage.down is not None:
                skips.append(y.detach())
            y, xyz = stage(y, xyz)
        return y, skips

    def decode(self, y: torch.Tensor, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """The five decoder outputs, last (full width) first."""
        outs = []
        for block in self.decoder:
            y = block(y)
            if block.upsample:
                y = y + skips.pop()
            outs.append(y)
        outs[-1] = self.decoder_dropout(outs[-1])
        return outs[::-1]

    def forward(self, x: torch.Tensor, aux: bool | None = None):
        """Logits ``(B, num_classes, H, W)``; with ``aux`` (default ``self.training``) the five
        heads' logits at width scales ``1, 1/2, 1/4, 1/8, 1/8``."""
        features = self.decode(*self.encode(x))
        if aux is None:
            aux = self.training
        if not aux:
            return self.heads[0](features[0])
        return [head(f) for head, f in zip(self.heads, features)]

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, num_classes={self.num_classes}"


def _fixed_depth(depth: int, other: int):
    """A registered builder whose depth is fixed by its name (a sidecar may still record it)."""

    def build(**kwargs) -> SqueezeSegV3:
        if "block" in kwargs:
            raise ValueError(f"block: ssgv3_{depth} is the released network (SAC blocks throughout) and takes no "
                             f"block; runs saved before the released network existed used the Table-3 network, "
                             f"now ssgv3_ablation_{depth} (block={kwargs['block']!r})")
        given = kwargs.pop("depth", depth)
        if given != depth:
            raise ValueError(f"depth is fixed to {depth} by ssgv3_{depth}, got {given!r}; use ssgv3_{other}")
        return SqueezeSegV3(depth=depth, **kwargs)

    return build


ssgv3_21 = register_model("ssgv3_21", task="lidar")(_fixed_depth(21, 53))
ssgv3_53 = register_model("ssgv3_53", task="lidar")(_fixed_depth(53, 21))
