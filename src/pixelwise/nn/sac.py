"""Spatially-adaptive convolution layers (SqueezeSegV3), the residual block the SqueezeSegV3
release is built of, and the attention blocks SAC generalises: squeeze-and-excitation (SAC-I),
CBAM (SAC-I then SAC-S) and CAM (SAC-IS)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_choice, check_odd, check_positive_int, check_tensor, pair
from ..ops import sac_conv2d

SAC_VARIANTS = ("S", "IS", "SK", "ISK")


class SacConv2d(nn.Conv2d):
    """Spatially-adaptive convolution with the attention branch of SqueezeSegV3.

    The attention is computed from the *raw* input ``X0`` (for LiDAR: normalised x, y, z) by a
    ``7x7`` convolution, batch norm and a sigmoid, at the resolution the variant needs (the
    input's for ``S``/``IS``, the output's for ``SK``/``ISK``). ``X0`` is resized there with
    nearest-neighbour sampling, so no point is invented between two surfaces.

    Channels of the attention: ``S`` 1, ``IS`` C, ``SK`` k*k, ``ISK`` C*k*k.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as ``nn.Conv2d``.
        variant: ``"S"``, ``"IS"``, ``"SK"`` or ``"ISK"``.
        raw_channels: channels of ``X0``.
        attention_kernel_size: size of the attention convolution (7 in the paper).

    Example:
        >>> import torch
        >>> from pixelwise.nn import SacConv2d
        >>> sac = SacConv2d(32, 32, 3, padding=1, variant="ISK", raw_channels=3)
        >>> x, xyz = torch.randn(1, 32, 16, 64), torch.randn(1, 3, 64, 256)
        >>> sac(x, xyz).shape
        torch.Size([1, 32, 16, 64])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, variant="ISK", raw_channels=3,
                 attention_kernel_size=7):
        check_choice(variant, "variant", SAC_VARIANTS)
        check_choice(padding_mode, "padding_mode", ("zeros",))
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.variant = variant
        self.raw_channels = raw_channels
        taps = self.kernel_size[0] * self.kernel_size[1]
        att = {"S": 1, "IS": in_channels, "SK": taps, "ISK": in_channels * taps}[variant]
        ka = pair(attention_kernel_size, "attention_kernel_size")
        self.attention = nn.Sequential(
            nn.Conv2d(raw_channels, att, ka, padding=(ka[0] // 2, ka[1] // 2), device=device, dtype=dtype),
            nn.BatchNorm2d(att, device=device, dtype=dtype),
            nn.Sigmoid(),
        )

    def attention_map(self, raw: torch.Tensor, in_size, out_size) -> torch.Tensor:
        """The attention tensor for :func:`pixelwise.ops.sac_conv2d` from the raw input."""
        check_tensor(raw, "raw", 4)
        if raw.shape[1] != self.raw_channels:
            raise ValueError(f"raw must have {self.raw_channels} channels, got shape {tuple(raw.shape)}")
        size = tuple(in_size) if self.variant in ("S", "IS") else tuple(out_size)
        if tuple(raw.shape[-2:]) != size:
            raw = F.interpolate(raw, size=size, mode="nearest")
        a = self.attention(raw)
        if self.variant in ("SK", "ISK"):
            a = a.view(a.shape[0], -1, self.kernel_size[0] * self.kernel_size[1], *size)
        return a

    def forward(self, input, raw):  # noqa: D102 - documented on the class
        check_tensor(input, "input", 4)
        if raw.shape[0] != input.shape[0]:
            raise ValueError(f"raw must have the batch of input ({input.shape[0]}), got shape {tuple(raw.shape)}")
        pad = self.padding if isinstance(self.padding, tuple) else (0, 0)
        if self.padding == "same":
            pad = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation))
        h, w = input.shape[-2:]
        out_size = tuple((n + 2 * pad[a] - self.dilation[a] * (self.kernel_size[a] - 1) - 1) // self.stride[a] + 1
                         for a, n in enumerate((h, w)))
        attention = self.attention_map(raw, (h, w), out_size)
        return sac_conv2d(input, attention, self.weight, self.bias, self.stride, pad, self.dilation, self.groups,
                          variant=self.variant)

    def extra_repr(self):
        return super().extra_repr() + f", variant={self.variant}, raw_channels={self.raw_channels}"


class SacBlock(nn.Module):
    """The residual block of the released SqueezeSegV3 network on ``C`` channels.

    ``x + ReLU(BN(conv3x3(ReLU(BN(SAC-ISK_3x3(x, A))))))`` with ``A = sigmoid(BN(conv7x7(xyz)))``:

    * ``attention``: 7x7 conv ``3 -> 9C`` (with bias) on the xyz channels at the features'
      resolution, BN, sigmoid -- one weight per input channel and tap, channel-major ``(c, ki,
      kj)`` as ``F.unfold`` orders them;
    * ``taps``: the weights of the 3x3 SAC-ISK convolution (with bias), stored as the release
      stores them, a ``(C, 9C, 1, 1)`` 1x1 convolution over the unfolded features; it is applied
      by :func:`pixelwise.ops.sac_conv2d` with the weight viewed as ``(C, C, 3, 3)``, which is
      the same sum without materialising the ``9C x H x W`` unfolded features;
    * ``post``: BN, ReLU, 3x3 conv ``C -> C`` (with bias), BN, ReLU; then the block input is added.

    Every BN has momentum 0.1, as released. ``state_dict`` keys: ``attention.0`` (conv),
    ``attention.1`` (BN), ``taps``, ``post.0`` (BN), ``post.2`` (conv), ``post.3`` (BN).

    Example:
        >>> import torch
        >>> from pixelwise.nn import SacBlock
        >>> blk = SacBlock(8)
        >>> blk(torch.randn(2, 8, 4, 16), torch.randn(2, 3, 4, 16)).shape
        torch.Size([2, 8, 4, 16])
    """

    def __init__(self, channels: int, raw_channels: int = 3, attention_kernel_size: int = 7):
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.raw_channels = check_positive_int(raw_channels, "raw_channels")
        k = check_odd(attention_kernel_size, "attention_kernel_size")
        taps = 9 * channels
        self.attention = nn.Sequential(nn.Conv2d(raw_channels, taps, k, padding=k // 2), nn.BatchNorm2d(taps),
                                       nn.Sigmoid())
        self.taps = nn.Conv2d(taps, channels, 1)
        self.post = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, C, H, W)`` features; ``xyz``: ``(B, raw_channels, H, W)`` coordinates at the
        same resolution (the caller resizes them between stages)."""
        check_tensor(x, "x", 4)
        check_tensor(xyz, "xyz", 4)
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels, got shape {tuple(x.shape)}")
        if xyz.shape[1] != self.raw_channels or xyz.shape[0] != x.shape[0] or xyz.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"xyz must have shape {(x.shape[0], self.raw_channels, *x.shape[-2:])} (the features' "
                             f"batch and size), got {tuple(xyz.shape)}")
        b, c, h, w = x.shape
        attention = self.attention(xyz).view(b, c, 9, h, w)
        y = sac_conv2d(x, attention, self.taps.weight.view(c, c, 3, 3), self.taps.bias, padding=1, variant="ISK")
        return self.post(y) + x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, raw_channels={self.raw_channels}"


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al.): global average pool, bottleneck MLP, sigmoid; the
    ``(B, C, 1, 1)`` attention is SAC-I.

    Example:
        >>> import torch
        >>> from pixelwise.nn import SqueezeExcitation
        >>> SqueezeExcitation(32, reduction=8)(torch.randn(2, 32, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def attention(self, x):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))

    def forward(self, x):
        return x * self.attention(x)


class CBAM(nn.Module):
    """Convolutional block attention module (Woo et al.): channel attention from average- and
    max-pooled descriptors through a shared MLP (SAC-I), then spatial attention from a ``7x7``
    conv on the channel-wise mean and max (SAC-S).

    Example:
        >>> import torch
        >>> from pixelwise.nn import CBAM
        >>> CBAM(32, reduction=8)(torch.randn(2, 32, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel_size: int = 7):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel_size, padding=spatial_kernel_size // 2)

    def channel_attention(self, x):
        return torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))

    def spatial_attention(self, x):
        return torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))

    def forward(self, x):
        x = x * self.channel_attention(x)
        return x * self.spatial_attention(x)


class CAM(nn.Module):
    """Context aggregation module of SqueezeSegV2: ``7x7`` max pooling (stride 1), a 1x1
    bottleneck and a sigmoid give a per-pixel, per-channel attention (SAC-IS) that suppresses
    LiDAR dropout noise.

    Example:
        >>> import torch
        >>> from pixelwise.nn import CAM
        >>> CAM(32, reduction=8)(torch.randn(2, 32, 8, 16)).shape
        torch.Size([2, 32, 8, 16])
    """

    def __init__(self, channels: int, reduction: int = 16, pool_size: int = 7):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool_size = pool_size
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def attention(self, x):
        pooled = F.max_pool2d(x, self.pool_size, stride=1, padding=self.pool_size // 2)
        return torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))

    def forward(self, x):
        return x * self.attention(x)
