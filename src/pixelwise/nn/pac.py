"""PAC layers as drop-ins for ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.AvgPool2d``.

They subclass the standard layers, so constructor arguments, initialisation, ``state_dict`` keys
and output sizes are the standard ones; ``forward`` takes the guidance features (or a precomputed
kernel) as well. The adapting-kernel options are keyword-only.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_choice
from ..ops import pac_conv2d, pac_conv_transpose2d, pac_kernel, pac_pool2d
from ..ops.pac_kernel import KERNEL_TYPES


class _KernelOptions:
    """Adapting-kernel settings shared by the PAC layers; learnable ``alpha``/``lambda`` for the
    inverse kernel live here as parameters."""

    def _init_kernel_options(self, kernel_type, normalize_kernel, channel_wise, inverse_alpha,
                             inverse_lambda, learnable_kernel, device, dtype):
        self.kernel_type = check_choice(kernel_type, "kernel_type", KERNEL_TYPES)
        self.normalize_kernel = bool(normalize_kernel)
        self.channel_wise = bool(channel_wise)
        if kernel_type == "inverse" and learnable_kernel:
            self.inverse_alpha = nn.Parameter(torch.tensor(float(inverse_alpha), device=device, dtype=dtype))
            self.inverse_lambda = nn.Parameter(torch.tensor(float(inverse_lambda), device=device, dtype=dtype))
        else:
            self.inverse_alpha, self.inverse_lambda = float(inverse_alpha), float(inverse_lambda)

    def kernel_options(self) -> dict:
        return dict(kernel_type=self.kernel_type, normalize=self.normalize_kernel, channel_wise=self.channel_wise,
                    inverse_alpha=self.inverse_alpha, inverse_lambda=self.inverse_lambda)

    def _kernel_repr(self) -> str:
        return f", kernel_type={self.kernel_type}, normalize_kernel={self.normalize_kernel}"


def _resolve_padding(padding, kernel_size, dilation):
    """``nn.Conv2d`` accepts ``'same'`` / ``'valid'``; for odd kernels they are plain integers."""
    if padding == "valid":
        return 0
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation))
    return padding


def _check_shared(in_channels, out_channels, groups):
    """One shared filter per channel needs as many outputs as inputs and no grouping."""
    if in_channels != out_channels or groups != 1:
        raise ValueError(f"shared_filters=True needs in_channels == out_channels and groups == 1, got "
                         f"{in_channels}, {out_channels}, groups={groups}")


class PacConv2d(nn.Conv2d, _KernelOptions):
    """Pixel-adaptive convolution layer (see :func:`pixelwise.ops.pac_conv2d`).

    ``PacConv2d(in, out, k, stride, padding, dilation, groups, bias)`` is built and initialised
    exactly like ``nn.Conv2d``; call it as ``layer(x, guide)`` or ``layer(x, kernel=K)``.
    With ``shared_filters=True`` one ``(1, 1, k, k)`` filter is applied to every channel
    (``in_channels == out_channels``).

    Example:
        >>> import torch
        >>> from pixelwise.nn import PacConv2d
        >>> layer = PacConv2d(8, 16, 5, padding=2)
        >>> layer(torch.randn(1, 8, 32, 32), torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 32, 32])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, kernel_type="gaussian",
                 normalize_kernel=False, channel_wise=False, shared_filters=False, inverse_alpha=0.0,
                 inverse_lambda=-0.5, learnable_kernel=True):
        check_choice(padding_mode, "padding_mode", ("zeros",))  # masked taps are zero
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self._init_kernel_options(kernel_type, normalize_kernel, channel_wise, inverse_alpha, inverse_lambda,
                                  learnable_kernel, device, dtype)
        self.shared_filters = bool(shared_filters)
        if self.shared_filters:
            _check_shared(in_channels, out_channels, groups)
            taps = self.kernel_size[0] * self.kernel_size[1]
            self.weight = nn.Parameter(torch.full((1, 1, *self.kernel_size), 1.0 / taps, device=device, dtype=dtype))

    def compute_kernel(self, guide: torch.Tensor) -> torch.Tensor:
        """The ``(B, 1|C, k*k, Ho, Wo)`` adapting kernel for ``guide`` (reusable across layers)."""
        return pac_kernel(guide, self.kernel_size, self.stride, self._padding(), self.dilation, **self.kernel_options())

    def _padding(self):
        return _resolve_padding(self.padding, self.kernel_size, self.dilation)

    def forward(self, input, guide=None, kernel=None):  # noqa: D102 - documented on the class
        return pac_conv2d(input, self.weight, self.bias, self.stride, self._padding(), self.dilation, self.groups,
                          guide=guide, kernel=kernel, shared_filters=self.shared_filters, **self.kernel_options())

    def extra_repr(self):
        return super().extra_repr() + self._kernel_repr()


class PacConvTranspose2d(nn.ConvTranspose2d, _KernelOptions):
    """Pixel-adaptive transposed convolution (PAC^T) layer (see
    :func:`pixelwise.ops.pac_conv_transpose2d`); built like ``nn.ConvTranspose2d``, called as
    ``layer(x, guide)`` with the guide at the *output* resolution.

    Example:
        >>> import torch
        >>> from pixelwise.nn import PacConvTranspose2d
        >>> up = PacConvTranspose2d(16, 16, 5, stride=2, padding=2, output_padding=1)
        >>> up(torch.randn(1, 16, 32, 32), torch.randn(1, 8, 64, 64)).shape
        torch.Size([1, 16, 64, 64])
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, kernel_type="gaussian",
                 normalize_kernel=False, channel_wise=False, shared_filters=False, inverse_alpha=0.0,
                 inverse_lambda=-0.5, learnable_kernel=True):
        check_choice(padding_mode, "padding_mode", ("zeros",))  # masked taps are zero
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype)
        self._init_kernel_options(kernel_type, normalize_kernel, channel_wise, inverse_alpha, inverse_lambda,
                                  learnable_kernel, device, dtype)
        self.shared_filters = bool(shared_filters)
        if self.shared_filters:
            _check_shared(in_channels, out_channels, groups)
            self.weight = nn.Parameter(torch.ones(1, 1, *self.kernel_size, device=device, dtype=dtype))

    def compute_kernel(self, guide: torch.Tensor) -> torch.Tensor:
        return pac_kernel(guide, self.kernel_size, self.stride, self.padding, self.dilation, transposed=True,
                          output_padding=self.output_padding, **self.kernel_options())

    def forward(self, input, guide=None, kernel=None):  # noqa: D102
        return pac_conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                    self.groups, self.dilation, guide=guide, kernel=kernel,
                                    shared_filters=self.shared_filters, **self.kernel_options())

    def extra_repr(self):
        return super().extra_repr() + self._kernel_repr()


class PacPool2d(nn.Module, _KernelOptions):
    """Pixel-adaptive pooling (see :func:`pixelwise.ops.pac_pool2d`): the arguments of
    ``nn.AvgPool2d``; ``kernel_type="inverse"`` gives detail-preserving pooling.

    Example:
        >>> import torch
        >>> from pixelwise.nn import PacPool2d
        >>> pool = PacPool2d(3, stride=2, padding=1, kernel_type="inverse")
        >>> x = torch.randn(1, 4, 32, 32)
        >>> pool(x, x).shape
        torch.Size([1, 4, 16, 16])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None, *, dilation=1, kernel_type="gaussian", normalize_kernel=False,
                 channel_wise=False, inverse_alpha=0.0, inverse_lambda=-0.5, learnable_kernel=True):
        super().__init__()
        if ceil_mode or divisor_override is not None:
            raise ValueError(f"PacPool2d supports ceil_mode=False and divisor_override=None only, got "
                             f"ceil_mode={ceil_mode!r}, divisor_override={divisor_override!r}")
        if not count_include_pad and not normalize_kernel:
            raise ValueError("count_include_pad=False is the normalised kernel: pass normalize_kernel=True")
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self._init_kernel_options(kernel_type, normalize_kernel, channel_wise, inverse_alpha, inverse_lambda,
                                  learnable_kernel, None, None)

    def forward(self, input, guide=None, kernel=None):  # noqa: D102
        return pac_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, guide=guide,
                          kernel=kernel, **self.kernel_options())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}" + self._kernel_repr()
