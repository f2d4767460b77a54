"""PAC-CRF (Su et al. 2019, Sec. 5): mean-field inference whose message passing is a PAC.

One mean-field step (Eq. 7, energies; ``unary`` are logits, i.e. ``-psi_u`` up to a constant)::

    Q^{t+1}_i(l) = softmax_l( unary_i(l) - sum_k sum_{l'} sum_{j in Omega_k(i)} K_k(f_i, f_j) W^k_{l' l}[p_j - p_i] Q^t_j(l') )

The inner sum over ``j`` and ``l'`` is exactly a pixel-adaptive convolution of ``Q`` with the
compatibility filter ``W^k`` and the Gaussian kernel ``K_k(f_i, f_j) = exp(-0.5 ||f_i - f_j||^2)``
on scaled RGB ``f = rgb / sigma_k`` (``sigma_k`` learned per channel and per pairwise kernel).

Compatibility forms of each pairwise kernel (:class:`PairwiseKernel`):

* ``"4d"``: ``W^k`` is ``L x L x s x s`` -- label compatibility that varies with the offset
  (the paper's PAC-CRF). ``weight[l, l', a, b]`` multiplies ``Q_j(l')`` for the neighbour ``j`` at
  offset ``((a - c) * dilation, (b - c) * dilation)`` from ``i`` (``c`` the centre tap), the
  cross-correlation convention of ``F.conv2d``.
* ``"2d"``: ``mu(l, l') * W2d[p_j - p_i]`` -- a learned ``L x L`` matrix times one spatial filter
  (Eq. 10, the factorised special case).
* ``"potts"``: ``[l != l'] * W2d[p_j - p_i]`` -- only the spatial filter is learned.
  ``sum_{l'} [l != l'] Q_j(l') = 1 - Q_j(l)``, so the message is one filtering of ``Q`` per
  label with no label mixing (the cheapest form).

The centre tap is excluded (``j != i``) by a fixed zero in every spatial filter. ``blur > 1``
runs the message passing on a ``blur``-times average-pooled grid and upsamples the message
bilinearly (the blurring of Conv-CRF, Teichmann & Cipolla 2018). :class:`PacCRF` shares the
pairwise weights across the mean-field steps; :class:`PacCRFLoose` learns separate ones per step.

Initialisation: Potts compatibility, uniform spatial weights summing to ``init_weight`` over the
window (centre excluded), ``sigma = init_sigma`` for RGB in [0, 1]. Pixel features are scaled,
never raw 0-255 (that makes ``K`` underflow to 0 and the gradients vanish).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (
    OutOfRangeError,
    WrongTypeError,
    check_choice,
    check_float,
    check_int,
    check_odd,
    check_positive_int,
)
from ..ops import pac_conv2d, pac_kernel
from ..ops.tap_loop import tap_loop_conv

__all__ = ["COMPATIBILITIES", "PacCRF", "PacCRFLoose", "PairwiseKernel"]

COMPATIBILITIES = ("4d", "2d", "potts")


@dataclass(frozen=True)
class PairwiseKernel:
    """Geometry and compatibility form of one pairwise PAC kernel of a PAC-CRF.

    ``PairwiseKernel(5, 32)`` is the paper's single 5x5 kernel at dilation 32; its window reaches
    ``(kernel_size - 1) * dilation + 1`` pixels (129 here; 257 at dilation 64).
    """

    kernel_size: int = 5
    dilation: int = 1
    blur: int = 1
    compat: str = "4d"

    def __post_init__(self) -> None:
        check_int(self.kernel_size, "PairwiseKernel.kernel_size", min=3)
        check_odd(self.kernel_size, "PairwiseKernel.kernel_size")
        check_positive_int(self.dilation, "PairwiseKernel.dilation")
        check_positive_int(self.blur, "PairwiseKernel.blur")
        check_choice(self.compat, "PairwiseKernel.compat", COMPATIBILITIES)

    @classmethod
    def coerce(cls, value) -> PairwiseKernel:
        """A :class:`PairwiseKernel` from itself, a dict of its fields, or ``(kernel_size, dilation)``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if isinstance(value, (tuple, list)):
            return cls(*value)
        raise WrongTypeError(f"kernels: expected PairwiseKernel, dict or (kernel_size, dilation), got {value!r}")


class PairwiseTerm(nn.Module):
    """One pairwise PAC kernel: its feature scales and compatibility filter; returns the message."""

    def __init__(self, num_classes: int, spec: PairwiseKernel, guide_channels: int, init_sigma: float,
                 init_weight: float) -> None:
        super().__init__()
        self.spec = spec
        L, k = num_classes, spec.kernel_size
        taps = k * k
        centre_mask = torch.ones(k, k)
        centre_mask[k // 2, k // 2] = 0.0
        self.register_buffer("centre_mask", centre_mask, persistent=False)
        # f = rgb * exp(log_scale) = rgb / sigma: a log keeps sigma positive while it is learned.
        self.log_scale = nn.Parameter(torch.full((guide_channels,), -math.log(init_sigma)))
        spatial = centre_mask * (init_weight / (taps - 1))
        potts = 1.0 - torch.eye(L)
        if spec.compat == "4d":
            self.weight = nn.Parameter(potts[:, :, None, None] * spatial)
        else:
            self.spatial = nn.Parameter(spatial.clone())
            if spec.compat == "2d":
                self.compat = nn.Parameter(potts)

    @property
    def padding(self) -> int:
        return self.spec.dilation * (self.spec.kernel_size - 1) // 2

    @property
    def _pad2(self) -> tuple[int, int]:
        return (self.padding, self.padding)

    @property
    def _dil2(self) -> tuple[int, int]:
        return (self.spec.dilation, self.spec.dilation)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return image * self.log_scale.exp().view(1, -1, 1, 1)

    def compute_kernel(self, image: torch.Tensor) -> torch.Tensor:
        """``K(f_i, f_j)`` over every window, at the (blurred) grid the messages run on."""
        f = self.features(image)
        if self.spec.blur > 1:
            f = _blur(f, self.spec.blur)
        s = self.spec
        return pac_kernel(f, s.kernel_size, 1, self.padding, s.dilation)

    def message(self, q: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """``sum_{l'} sum_j K_ij W_{l' l}[p_j - p_i] Q_j(l')`` for every pixel and label."""
        size = q.shape[-2:]
        if self.spec.blur > 1:
            q = _blur(q, self.spec.blur)
        s = self.spec
        if s.compat == "4d":
            # Label mixing: the column engine (its GEMM) beats the tap loop here, measured single-threaded.
            m = pac_conv2d(q, self.weight * self.centre_mask, None, 1, self.padding, s.dilation, kernel=kernel)
        else:
            spatial = (self.spatial * self.centre_mask).view(1, 1, s.kernel_size, s.kernel_size)
            # One filter per label, no mixing: the tap loop (contiguous slices, taps outside skipped) wins.
            filtered = tap_loop_conv(q, kernel, spatial, self._pad2, self._dil2, shared_filters=True)
            if s.compat == "2d":
                m = F.conv2d(filtered, self.compat[:, :, None, None])
            else:  # Potts: sum_{l' != l} = (sum over all labels) - (label l itself); sum_l' Q_j(l') = 1
                total = (kernel * spatial.reshape(1, 1, -1, 1, 1)).sum(2)
                m = total - filtered
        if self.spec.blur > 1:  # back to the padded full grid, cells aligned, then crop the padding
            b = self.spec.blur
            m = F.interpolate(m, size=(m.shape[-2] * b, m.shape[-1] * b), mode="bilinear", align_corners=False)
            m = m[..., : size[0], : size[1]]
        return m

    def extra_repr(self) -> str:
        s = self.spec
        return f"kernel_size={s.kernel_size}, dilation={s.dilation}, blur={s.blur}, compat={s.compat!r}"


def _blur(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average over ``factor x factor`` cells; the image is first padded (edge values) to a multiple
    of ``factor`` so every cell is whole and the upsampled message lines up with the pixels."""
    ph, pw = -x.shape[-2] % factor, -x.shape[-1] % factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.avg_pool2d(x, factor, factor)


class PacCRF(nn.Module):
    """Learnable CRF with pixel-adaptive pairwise kernels, unrolled for ``steps`` mean-field steps.

    Args:
        num_classes: ``L``.
        kernels: the pairwise kernels applied in parallel: :class:`PairwiseKernel` objects, dicts
            of their fields, or ``(kernel_size, dilation)`` pairs. Default: one 5x5 at dilation 32.
        steps: mean-field steps (the paper uses 5).
        guide_channels: channels of the guide image (3 for RGB in [0, 1]).
        output: ``"log"`` returns ``log Q`` (for NLL training), ``"prob"`` returns ``Q``.
        init_sigma: initial feature scale (``f = rgb / sigma``).
        init_weight: initial total spatial weight of a kernel's window.

    ``crf(unary, image)``: ``unary (B, L, H, W)`` logits, ``image (B, guide_channels, H, W)``;
    returns ``(B, L, H, W)``. With zero pairwise weights the result is ``softmax(unary)``.

    Example:
        >>> import torch
        >>> from pixelwise.nn import PacCRF, PairwiseKernel
        >>> crf = PacCRF(4, kernels=[PairwiseKernel(5, 2)], steps=3)
        >>> logq = crf(torch.randn(1, 4, 20, 24), torch.rand(1, 3, 20, 24))
        >>> logq.exp().sum(1).allclose(torch.ones(1, 20, 24))
        True
    """

    loose = False

    def __init__(self, num_classes: int, kernels=(PairwiseKernel(5, 32),), steps: int = 5, guide_channels: int = 3,
                 output: str = "log", init_sigma: float = 0.1, init_weight: float = 1.0) -> None:
        super().__init__()
        check_int(num_classes, "num_classes", min=2)
        check_int(steps, "steps", min=0)
        check_choice(output, "output", ("log", "prob"))
        check_float(init_sigma, "init_sigma", low=0, low_open=True)
        check_positive_int(guide_channels, "guide_channels")
        specs = tuple(PairwiseKernel.coerce(k) for k in kernels)
        if not specs:
            raise ValueError("kernels: at least one pairwise kernel is needed")
        self.num_classes, self.steps, self.guide_channels, self.output = num_classes, steps, guide_channels, output
        self.kernels = specs

        def make_terms():
            return nn.ModuleList(PairwiseTerm(num_classes, s, guide_channels, init_sigma, init_weight) for s in specs)

        # Shared: one set of terms for every step. Loose: one set per step.
        self.terms = nn.ModuleList(make_terms() for _ in range(max(1, steps) if self.loose else 1))

    def _check(self, unary: torch.Tensor, image: torch.Tensor) -> None:
        if not isinstance(unary, torch.Tensor) or unary.dim() != 4:
            raise ValueError(f"unary must be a (B, L, H, W) tensor, got "
                             f"{tuple(unary.shape) if isinstance(unary, torch.Tensor) else type(unary).__name__}")
        if not isinstance(image, torch.Tensor) or image.dim() != 4:
            raise ValueError(f"image must be a (B, C, H, W) tensor, got "
                             f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
        if unary.shape[1] != self.num_classes:
            raise ValueError(f"unary has {unary.shape[1]} classes, this CRF was built for {self.num_classes}")
        if image.shape[1] != self.guide_channels:
            what = "RGB, 3 channels" if self.guide_channels == 3 else f"{self.guide_channels} channels"
            raise ValueError(f"image must be {what}; got {image.shape[1]} channel(s)")
        if unary.shape[0] != image.shape[0] or unary.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"unary and image must have the same batch and spatial size, got unary "
                             f"{tuple(unary.shape)} and image {tuple(image.shape)}")
        if not torch.isfinite(unary).all():
            raise ValueError("unary has non-finite values")

    def forward(self, unary: torch.Tensor, image: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        self._check(unary, image)
        image = image.to(unary.dtype)
        steps = self.steps if steps is None else check_int(steps, "steps", min=0)
        if self.loose and steps > len(self.terms):
            raise OutOfRangeError(f"steps: this loose CRF has weights for {len(self.terms)} steps, asked for {steps}")
        logits = unary
        kernels = None
        for t in range(steps):
            terms = self.terms[t if self.loose else 0]
            if kernels is None or self.loose:  # the features do not change across steps: K once
                kernels = [term.compute_kernel(image) for term in terms]
            q = torch.softmax(logits, 1)
            logits = unary - sum(term.message(q, K) for term, K in zip(terms, kernels))
        return torch.log_softmax(logits, 1) if self.output == "log" else torch.softmax(logits, 1)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, steps={self.steps}, output={self.output!r}"


class PacCRFLoose(PacCRF):
    """:class:`PacCRF` whose mean-field steps do not share weights (each step its own pairwise
    kernels and feature scales), like an unrolled recurrent network with untied layers."""

    loose = True
