"""Fully connected CRF (Kraehenbuehl & Koltun 2011), the baseline PAC-CRF is compared with.

The model is the one of the authors' C++ code, run through ``pydensecrf`` (permutohedral lattice,
approximate Gaussian filtering in ``O(N)``) behind the interface of :class:`pixelwise.nn.PacCRF`:
``q = crf(unary, image)`` with ``unary (B, L, H, W)`` logits and ``image (B, 3, H, W)`` RGB in [0, 1].

Pairwise kernels (Eq. 4 of Su et al. 2019; positions ``p`` in pixels, colours ``I`` in 0..255)::

    w1 exp(-|p_i - p_j|^2 / 2 theta_alpha^2 - |I_i - I_j|^2 / 2 theta_beta^2)   (appearance)
    w2 exp(-|p_i - p_j|^2 / 2 theta_gamma^2)                                   (smoothness)

What the library computes, checked against its behaviour (and reproduced by ``backend="exact"``):

* every kernel is normalised symmetrically, ``k_ij / sqrt(n_i n_j)`` with ``n_i = sum_j k_ij``;
* Potts compatibility rewards agreement: ``logits_i(l) = -U_i(l) + sum_k w_k sum_j k_ij Q_j(l)``.
  The paper's ``mu(l, l') = [l != l']`` gives ``-w sum_j k_ij (1 - Q_j(l))``, which differs only by
  ``-w sum_j k_ij``, a per-pixel constant that the softmax over ``l`` removes: the same ``Q``;
* the sum over ``j`` includes ``j = i`` (Eq. 5 writes ``j != i``). The self term ``w k_ii Q_i(l)``
  is not constant in ``l``, but its normalised weight is ``w / n_i``: negligible once many pixels
  fall under a kernel, while a lone pixel (a 1x1 image) sees its own belief sharpened.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

__all__ = ["BACKENDS", "DenseCRF", "DenseCRFParams"]

BACKENDS = ("permutohedral", "exact")
EXACT_MAX_PIXELS = 4096  # the exact backend keeps N x N kernels in float64: an oracle, not a product path


@dataclass(frozen=True)
class DenseCRFParams:
    """Mean-field steps and kernel parameters of the fully connected CRF.

    The defaults are DeepLab's PASCAL VOC setting (Chen et al., DeepLab-CRF-LargeFOV): ``w2 = 3`` and
    ``theta_gamma = 3`` are Kraehenbuehl & Koltun's defaults, ``w1, theta_alpha, theta_beta`` came
    from a grid search on VOC validation. They depend on the data and the unaries: re-tune them
    on validation images (:func:`pixelwise.tasks.segment.dense_search.grid_search_dense_crf`), as
    the PAC-CRF paper did for its Full-CRF baseline.

    Attributes:
        steps: mean-field iterations (0 returns ``softmax(unary)``).
        appearance_weight: ``w1``.
        appearance_xy: ``theta_alpha``, pixels.
        appearance_rgb: ``theta_beta``, intensity levels on the 0..255 scale.
        smoothness_weight: ``w2``.
        smoothness_xy: ``theta_gamma``, pixels.
    """

    steps: int = 5
    appearance_weight: float = 4.0
    appearance_xy: float = 121.0
    appearance_rgb: float = 5.0
    smoothness_weight: float = 3.0
    smoothness_xy: float = 3.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 0:
            raise ValueError(f"DenseCRFParams.steps: must be an int >= 0, got {self.steps!r}")
        for f in fields(self)[1:]:  # every field after steps is a positive, finite real
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 < v < np.inf:
                raise ValueError(f"DenseCRFParams.{f.name}: must be a finite number > 0, got {v!r}")


class DenseCRF(nn.Module):
    """Fully connected CRF with Gaussian appearance + smoothness kernels and Potts compatibility.

    Args:
        params: :class:`DenseCRFParams`.
        backend: ``"permutohedral"`` (``pydensecrf``, the product path) or ``"exact"`` (dense
            ``N x N`` mean field in float64, at most 4096 pixels per image: the oracle that checks
            the lattice's approximation).
        output: ``"log"`` returns ``log Q`` (like :class:`PacCRF`), ``"prob"`` returns ``Q``.

    ``crf(unary, image)``: ``unary (B, L, H, W)`` logits (``-psi_u`` up to a constant), ``image
    (B, 3, H, W)`` RGB in [0, 1] (clipped, then quantised to 0..255 as the library wants); returns
    ``(B, L, H, W)`` on the device and with the dtype of ``unary``. Inference runs on the CPU, per
    image, without gradients: it is a post-processing baseline, not a trainable layer.

    Example:
        >>> import torch
        >>> from pixelwise.nn import DenseCRF
        >>> logq = DenseCRF()(torch.randn(1, 4, 20, 24), torch.rand(1, 3, 20, 24))
        >>> logq.exp().sum(1).allclose(torch.ones(1, 20, 24))
        True
    """

    def __init__(self, params: DenseCRFParams = DenseCRFParams(), backend: str = "permutohedral",
                 output: str = "log") -> None:
        super().__init__()
        if not isinstance(params, DenseCRFParams):
            raise TypeError(f"params: expected DenseCRFParams, got {type(params).__name__}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if output not in ("log", "prob"):
            raise ValueError(f"output: must be 'log' or 'prob', got {output!r}")
        self.params, self.backend, self.output = params, backend, output

    def forward(self, unary: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        _check_inputs(unary, image)
        if self.backend == "exact" and unary.shape[-2] * unary.shape[-1] > EXACT_MAX_PIXELS:
            raise ValueError(f"backend 'exact': at most {EXACT_MAX_PIXELS} pixels per image (it builds N x N "
                             f"kernels), got {unary.shape[-2]}x{unary.shape[-1]}; use backend 'permutohedral'")
        if self.params.steps == 0:  # no library round trip: exactly the softmax of the unary
            return torch.log_softmax(unary, 1) if self.output == "log" else torch.softmax(unary, 1)
        infer = _permutohedral if self.backend == "permutohedral" else _exact
        with torch.no_grad():
            energy = -torch.log_softmax(unary.detach().cpu().double(), 1)
            rgb = _quantise(image.detach().cpu())
            q = torch.stack([infer(energy[b], rgb[b], self.params) for b in range(unary.shape[0])])
        q = q.to(device=unary.device, dtype=unary.dtype)
        return q.clamp_min(torch.finfo(q.dtype).tiny).log() if self.output == "log" else q

    def extra_repr(self) -> str:
        return f"{self.params}, backend={self.backend!r}, output={self.output!r}"


def _check_inputs(unary, image) -> None:
    for name, t in (("unary", unary), ("image", image)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            what = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {what}")
    if unary.dim() != 4:
        raise ValueError(f"unary must be 4-D (B, L, H, W), got shape {tuple(unary.shape)}")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be RGB (3 channels), shaped (B, 3, H, W); got shape {tuple(image.shape)}")
    if unary.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"unary and image: spatial sizes differ, unary {tuple(unary.shape)} vs image "
                         f"{tuple(image.shape)}")
    if unary.shape[0] != image.shape[0]:
        raise ValueError(f"unary and image: batch sizes differ, {unary.shape[0]} vs {image.shape[0]}")
    if not bool(torch.isfinite(unary).all()):
        raise ValueError(f"unary must be finite, got {int((~torch.isfinite(unary)).sum())} NaN/inf values")
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"image must be finite, got {int((~torch.isfinite(image)).sum())} NaN/inf values")


def _quantise(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, H, W, 3)`` uint8, the colours the library filters on."""
    return (image.double().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _permutohedral(energy: torch.Tensor, rgb: torch.Tensor, p: DenseCRFParams) -> torch.Tensor:
    import pydensecrf.densecrf as dcrf

    L, H, W = energy.shape
    crf = dcrf.DenseCRF2D(W, H, L)
    crf.setUnaryEnergy(np.ascontiguousarray(energy.reshape(L, H * W).numpy(), dtype=np.float32))
    crf.addPairwiseGaussian(sxy=float(p.smoothness_xy), compat=float(p.smoothness_weight))
    crf.addPairwiseBilateral(sxy=float(p.appearance_xy), srgb=float(p.appearance_rgb),
                             rgbim=np.ascontiguousarray(rgb.numpy()), compat=float(p.appearance_weight))
    q = np.asarray(crf.inference(int(p.steps)), dtype=np.float32)
    return torch.from_numpy(q.reshape(L, H, W).copy())


def _exact(energy: torch.Tensor, rgb: torch.Tensor, p: DenseCRFParams) -> torch.Tensor:
    """Dense mean field in float64 with exact Gaussian kernels, normalised like the library's."""
    L, H, W = energy.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                            indexing="ij")
    pos = torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)
    colour = rgb.reshape(H * W, 3).double()
    pairwise = p.appearance_weight * _normalised_gaussian(
        torch.cat([pos / p.appearance_xy, colour / p.appearance_rgb], 1))
    pairwise += p.smoothness_weight * _normalised_gaussian(pos / p.smoothness_xy)
    unary = -energy.reshape(L, H * W).T
    q = torch.softmax(unary, 1)
    for _ in range(p.steps):
        q = torch.softmax(unary + pairwise @ q, 1)
    return q.T.reshape(L, H, W)


def _normalised_gaussian(features: torch.Tensor) -> torch.Tensor:
    k = torch.exp(-0.5 * torch.cdist(features, features).square())
    inv_sqrt_norm = k.sum(1).rsqrt()
    return k * inv_sqrt_norm[:, None] * inv_sqrt_norm[None, :]
