"""Building blocks every model shares: conv-norm-act, plain conv stacks, residual blocks and the
dilated ResNet (one concept each, in the spirit of timm's ``layers/``).

The builders return plain ``nn.Sequential`` containers (or a small module) whose child names are
the ``state_dict`` keys the models have always had, and they build their layers in a fixed order
(convolution, then normalisation, then activation; layer after layer), so a model assembled from
them draws the same parameter initialisation from the RNG as one written out by hand.

* :func:`conv_norm_act` -- ``Sequential(conv, norm, act)``, keys ``0.*`` (conv), ``1.*`` (norm).
* :func:`conv_stack` -- a flat ``Sequential`` of conv (+ norm) + act layers, ``"same"`` padding.
* :class:`BasicBlock` -- the ResNet basic block (two 3x3 convs with BN, dilation, optional
  projection shortcut), with a replaceable first convolution.
* :func:`dilated_resnet` -- stem + four stages of basic blocks at output stride 8 (Kong & Fowlkes
  2018, the backbone of the embedding and segmentation networks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Union

import torch
from torch import nn

__all__ = [
    "DRN_STAGE_CHANNELS",
    "DRN_STAGE_DILATIONS",
    "DRN_STAGE_STRIDES",
    "BasicBlock",
    "DilatedResNetLayers",
    "conv_norm_act",
    "conv_stack",
    "create_act",
    "create_norm",
    "dilated_resnet",
    "same_padding",
    "scale_channels",
]

Size2 = Union[int, tuple[int, int]]
#: ``None`` (no layer), a name (``"relu"``: ``nn.ReLU(inplace=True)``) or a zero-argument factory.
ActSpec = Union[None, str, Callable[[], nn.Module]]
#: ``None`` (no layer), a name (``"batch"``: ``nn.BatchNorm2d``) or a factory of the channel count.
NormSpec = Union[None, str, Callable[[int], nn.Module]]

_ACTS: dict[str, Callable[[], nn.Module]] = {"relu": lambda: nn.ReLU(inplace=True)}
_NORMS: dict[str, Callable[[int], nn.Module]] = {"batch": nn.BatchNorm2d}

# The dilated ResNet of Kong & Fowlkes 2018 (scaled down): stage widths, strides and dilations.
DRN_STAGE_CHANNELS = (64, 128, 256, 256)
DRN_STAGE_STRIDES = (2, 2, 1, 1)
DRN_STAGE_DILATIONS = (1, 1, 2, 4)


def create_act(act: ActSpec) -> nn.Module | None:
    """A fresh activation layer: ``None`` -> ``None``, ``"relu"`` -> ``nn.ReLU(inplace=True)``, or
    ``act()`` for a factory such as ``functools.partial(nn.LeakyReLU, 0.1, inplace=True)``."""
    if act is None:
        return None
    if isinstance(act, str):
        if act not in _ACTS:
            raise ValueError(f"act: expected one of {sorted(_ACTS)}, None or a factory, got {act!r}")
        return _ACTS[act]()
    if not callable(act):
        raise TypeError(f"act: expected a name, None or a zero-argument factory, got {type(act).__name__}")
    return act()


def create_norm(norm: NormSpec, channels: int) -> nn.Module | None:
    """A fresh normalisation layer over ``channels``: ``None`` -> ``None``, ``"batch"`` ->
    ``nn.BatchNorm2d(channels)``, or ``norm(channels)`` for a factory."""
    if norm is None:
        return None
    if isinstance(norm, str):
        if norm not in _NORMS:
            raise ValueError(f"norm: expected one of {sorted(_NORMS)}, None or a factory, got {norm!r}")
        return _NORMS[norm](channels)
    if not callable(norm):
        raise TypeError(f"norm: expected a name, None or a factory of the channel count, got {type(norm).__name__}")
    return norm(channels)


def same_padding(kernel_size: Size2, dilation: Size2 = 1) -> Size2:
    """``dilation * (k - 1) // 2`` per dimension: keeps the size of an odd kernel at stride 1.

    An int for int arguments, a pair otherwise (``same_padding((1, 5)) == (0, 2)``).
    """
    if isinstance(kernel_size, int) and isinstance(dilation, int):
        return dilation * (kernel_size - 1) // 2
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    return tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))


def scale_channels(channels: int, width: float, min_channels: int = 8) -> int:
    """``round(channels * width)``, at least ``min_channels`` (a width multiplier's channel count)."""
    return max(min_channels, round(channels * width))


def conv_norm_act(in_ch: int, out_ch: int, kernel_size: Size2 = 3, stride: Size2 = 1, dilation: Size2 = 1,
                  padding: Size2 | None = None, *, norm: NormSpec = "batch", act: ActSpec = "relu",
                  bias: bool | None = None, conv_layer: Callable[..., nn.Module] = nn.Conv2d) -> nn.Sequential:
    """``nn.Sequential(conv, norm, act)``: child ``"0"`` the convolution, ``"1"`` the norm (when
    there is one), then the activation (when there is one).

    Args:
        in_ch, out_ch, kernel_size, stride, dilation: as ``nn.Conv2d``.
        padding: ``None`` for :func:`same_padding` (the size is kept at stride 1 for odd kernels).
        norm: see :func:`create_norm` (default ``nn.BatchNorm2d``).
        act: see :func:`create_act` (default ``nn.ReLU(inplace=True)``).
        bias: ``None``: a bias only when there is no norm (a norm's shift makes it redundant).
        conv_layer: the convolution class, called as ``conv_layer(in_ch, out_ch, kernel_size,
            stride=, padding=, dilation=, bias=)``; ``nn.ConvTranspose2d`` works too (give
            ``padding`` explicitly, :func:`same_padding` is for forward convolutions).

    The layers are built in order (conv, norm, act), so the RNG draws are those of writing the
    ``nn.Sequential`` out by hand.

    Example:
        >>> import torch
        >>> block = conv_norm_act(3, 8, 3, dilation=2)
        >>> [type(m).__name__ for m in block], block[0].padding
        (['Conv2d', 'BatchNorm2d', 'ReLU'], (2, 2))
        >>> block(torch.randn(1, 3, 16, 16)).shape
        torch.Size([1, 8, 16, 16])
    """
    if padding is None:
        padding = same_padding(kernel_size, dilation)
    if bias is None:
        bias = norm is None
    layers = [conv_layer(in_ch, out_ch, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=bias)]
    norm_layer = create_norm(norm, out_ch)
    if norm_layer is not None:
        layers.append(norm_layer)
    act_layer = create_act(act)
    if act_layer is not None:
        layers.append(act_layer)
    return nn.Sequential(*layers)


def conv_stack(in_ch: int, widths: Sequence[int], kernel_sizes: int | Sequence[Size2] = 3, *,
               norm: NormSpec = None, act: ActSpec = "relu", act_last: bool = True) -> nn.Sequential:
    """A flat ``nn.Sequential`` of ``len(widths)`` convolutions with ``"same"`` padding, each
    followed by ``norm`` and ``act`` (the last one's ``act`` only when ``act_last``).

    The layers sit in one container (``0`` conv, ``1`` act, ``2`` conv, ... without a norm), as a
    hand-written stack would hold them. ``kernel_sizes`` is one size for every layer or one per
    layer (``[9, 1, 5]``; a non-square kernel only as an entry of that list, ``[(1, 5)] * n``); a
    convolution has a bias when there is no norm.

    Example:
        >>> import torch
        >>> stack = conv_stack(3, [16, 16, 1], [9, 1, 5], act_last=False)
        >>> [type(m).__name__ for m in stack]
        ['Conv2d', 'ReLU', 'Conv2d', 'ReLU', 'Conv2d']
        >>> stack(torch.randn(1, 3, 20, 20)).shape
        torch.Size([1, 1, 20, 20])
    """
    widths = list(widths)
    if not widths:
        raise ValueError("conv_stack: widths must name at least one layer")
    kernel_sizes = [kernel_sizes] * len(widths) if isinstance(kernel_sizes, int) else list(kernel_sizes)
    if len(kernel_sizes) != len(widths):
        raise ValueError(f"conv_stack: {len(kernel_sizes)} kernel sizes for {len(widths)} layers")
    layers: list[nn.Module] = []
    for i, (width, k) in enumerate(zip(widths, kernel_sizes)):
        last = i == len(widths) - 1
        layers.extend(conv_norm_act(in_ch, width, k, norm=norm, act=act if act_last or not last else None))
        in_ch = width
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and a shortcut.

    ``act_after_add=True`` (ResNet): ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``;
    ``act_after_add=False`` (RangeNet / SqueezeSegV3): ``act(bn2(conv2(act(bn1(conv1(x)))))) +
    shortcut(x)``. The shortcut is the identity, or a 1x1 conv + BN projection (``shortcut``)
    when ``stride != 1`` or the channel count changes. Both convolutions use ``dilation`` (and
    padding ``dilation``, so the size changes only by ``stride``, applied in ``conv1``).

    ``state_dict`` keys: ``conv1``, ``bn1``, ``conv2``, ``bn2``, ``shortcut.0`` / ``shortcut.1``.

    Args:
        in_ch, out_ch, stride, dilation: of the block (``stride`` may be a pair).
        act: see :func:`create_act`; one layer, used at both places.
        act_after_add: where the second activation goes (see above).
        make_conv1: optional zero-argument factory of the first convolution, e.g. an adaptive
            convolution. It is called right after ``nn.Module.__init__``, before any other layer
            is built, so a subclass's factory may first register the modules the convolution
            depends on (they then precede ``conv1`` in the ``state_dict``). A subclass whose
            first convolution takes more inputs calls :meth:`forward_after_conv1` itself.

    Example:
        >>> import torch
        >>> block = BasicBlock(8, 16, stride=2, dilation=1)
        >>> block(torch.randn(1, 8, 16, 16)).shape
        torch.Size([1, 16, 8, 8])
    """

    def __init__(self, in_ch: int, out_ch: int, stride: Size2 = 1, dilation: int = 1, *, act: ActSpec = "relu",
                 act_after_add: bool = True, make_conv1: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        if make_conv1 is None:
            self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, dilation, dilation, bias=False)
        else:
            self.conv1 = make_conv1()
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = None
        if stride not in (1, (1, 1)) or in_ch != out_ch:
            self.shortcut = conv_norm_act(in_ch, out_ch, 1, stride, act=None)
        act_layer = create_act(act)
        self.act = nn.Identity() if act_layer is None else act_layer
        self.act_after_add = act_after_add

    def forward_after_conv1(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The rest of the block given ``y = conv1(x)``."""
        y = self.bn2(self.conv2(self.act(self.bn1(y))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(y + skip) if self.act_after_add else self.act(y) + skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_after_conv1(self.conv1(x), x)


class DilatedResNetLayers(NamedTuple):
    """What :func:`dilated_resnet` builds: the stem, the stages and each stage's output width."""

    stem: nn.Sequential
    stages: nn.Sequential
    stage_channels: tuple[int, ...]

    @property
    def out_channels(self) -> int:
        return self.stage_channels[-1]


def dilated_resnet(in_channels: int, width: float = 1.0, blocks: int = 2, stem: int = 32, *,
                   channels: Sequence[int] = DRN_STAGE_CHANNELS, strides: Sequence[int] = DRN_STAGE_STRIDES,
                   dilations: Sequence[int] = DRN_STAGE_DILATIONS, min_channels: int = 8) -> DilatedResNetLayers:
    """The dilated residual network of Kong & Fowlkes 2018 at output stride 8 (by default).

    * Stem (``stem.0``, ``stem.1``): 3x3 conv stride 2 + BN + ReLU, then 3x3 conv + BN + ReLU,
      ``stem * width`` channels -- 1/2.
    * Stages (``stages.i``): ``blocks`` :class:`BasicBlock` each, ``channels * width`` wide; the
      first block of a stage takes its stride, every block its dilation. The defaults (strides
      2, 2, 1, 1 and dilations 1, 1, 2, 4) reach 1/8 after stage 2 and then grow the receptive
      field with dilation instead of resolution loss.

    Channel counts are :func:`scale_channels` of ``width`` (at least ``min_channels``). The
    modules are returned, not wrapped, so a model stores them under its own names (``stem``,
    ``stages``) and keeps its ``state_dict`` keys.

    Example:
        >>> import torch
        >>> stem, stages, chans = dilated_resnet(3, width=0.25, blocks=1)
        >>> stages(stem(torch.randn(1, 3, 64, 64))).shape, chans
        (torch.Size([1, 64, 8, 8]), (16, 32, 64, 64))
    """
    if not (len(channels) == len(strides) == len(dilations)):
        raise ValueError(f"dilated_resnet: channels, strides and dilations must have one entry per stage, got "
                         f"{len(channels)}, {len(strides)}, {len(dilations)}")
    if blocks < 1:
        raise ValueError(f"dilated_resnet: blocks must be >= 1, got {blocks}")
    ch = tuple(scale_channels(c, width, min_channels) for c in channels)
    stem_ch = scale_channels(stem, width, min_channels)
    stem_layers = nn.Sequential(conv_norm_act(in_channels, stem_ch, 3, stride=2), conv_norm_act(stem_ch, stem_ch, 3))
    stages, cin = [], stem_ch
    for cout, stride, dilation in zip(ch, strides, dilations):
        layers = [BasicBlock(cin, cout, stride, dilation)]
        layers += [BasicBlock(cout, cout, 1, dilation) for _ in range(blocks - 1)]
        stages.append(nn.Sequential(*layers))
        cin = cout
    return DilatedResNetLayers(stem_layers, nn.Sequential(*stages), ch)
