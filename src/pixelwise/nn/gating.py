"""Gating modules of Kong's thesis: depth-aware gating and recurrent refinement (ch. 3), the
pixel-wise attentional gating (PAG) residual and the MultiPool module (ch. 4). The arithmetic is
in :mod:`pixelwise.ops.gating`.

* :class:`DepthAwareGating` -- 5 parallel 3x3 atrous branches (dilations 1, 2, 4, 8, 16) gated per
  pixel by the depth bin, averaged uniformly, or gated by a learned softmax attention.
* :class:`RecurrentRefinement` -- one refinement block applied ``loops`` times on
  ``concat(features, previous prediction)``; weights shared, every loop's prediction returned.
* :class:`PagResidual` -- ``O = I + G * F(I)`` with a binary Gumbel gate ``G`` per pixel.
* :class:`MultiPool` -- per-pixel choice among 3x3 branches of dilations (0, 1, 2, 4, 6, 8, 10),
  0 = identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (
    ShapeError,
    WrongTypeError,
    check_choice,
    check_float,
    check_int,
    check_positive_int,
    check_tensor,
)
from ..ops.gating import bin_gate, gated_sum, gumbel_gate, kl_sparsity
from .blocks import NormSpec, conv_norm_act

__all__ = ["DepthAwareGating", "MultiPool", "PagResidual", "RecurrentRefinement"]

GATING_MODES = ("depth", "uniform", "attention")
MULTIPOOL_MODES = ("pag", "softmax")


def _check_dilations(dilations, name: str, min_value: int) -> tuple[int, ...]:
    if isinstance(dilations, (str, bytes)) or not isinstance(dilations, Sequence):
        raise WrongTypeError(f"{name} must be a sequence of ints, got {dilations!r}")
    if not dilations:
        raise ShapeError(f"{name} must name at least one branch")
    return tuple(check_int(d, f"{name}[{i}]", min=min_value) for i, d in enumerate(dilations))


def _check_gate(gate: torch.Tensor, x: torch.Tensor, k: int, name: str = "gate") -> None:
    check_tensor(gate, name, 4)
    want = (x.shape[0], k, x.shape[2], x.shape[3])
    if tuple(gate.shape) != want:
        raise ShapeError(f"{name} must have shape {want}, got {tuple(gate.shape)}")


class DepthAwareGating(nn.Module):
    """Depth-aware gating (thesis ch. 3): K parallel 3x3 atrous conv-norm-act branches, summed
    under a per-pixel gate.

    Branch ``k`` has dilation ``dilations[k]`` and is selected by depth bin ``k`` of
    :func:`pixelwise.ops.depth_bins`, whose bins run far -> near: far pixels get the small
    dilation (small pooling field), near pixels the large one.

    Modes:
        ``"depth"``: ``forward(x, bins)`` with integer bins (B, H, W) (one-hot gate), or a float
            gate (B, K, H, W) (e.g. the softmax of a depth-bin classifier).
        ``"uniform"``: the mean of the branches (no depth; ``bins`` must be ``None``).
        ``"attention"``: softmax over K of a 1x1 conv on ``x`` (learned, no depth supervision).

    The last gate used is kept in ``last_gate`` (detached; ``None`` in uniform mode).

    Example:
        >>> import torch
        >>> m = DepthAwareGating(4, 8)
        >>> x = torch.randn(2, 4, 16, 16)
        >>> bins = torch.randint(0, 5, (2, 16, 16))
        >>> m(x, bins).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, in_ch: int, out_ch: int, dilations: Sequence[int] = (1, 2, 4, 8, 16),
                 mode: str = "depth", *, norm: NormSpec = "batch", act="relu") -> None:
        super().__init__()
        in_ch = check_positive_int(in_ch, "in_ch")
        out_ch = check_positive_int(out_ch, "out_ch")
        self.dilations = _check_dilations(dilations, "dilations", 1)
        self.mode = check_choice(mode, "mode", GATING_MODES)
        self.branches = nn.ModuleList(conv_norm_act(in_ch, out_ch, 3, dilation=d, norm=norm, act=act)
                                      for d in self.dilations)
        self.attention = nn.Conv2d(in_ch, len(self.dilations), 1) if mode == "attention" else None
        self.last_gate: torch.Tensor | None = None

    @property
    def num_branches(self) -> int:
        return len(self.dilations)

    def gate(self, x: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor | None:
        """The (B, K, H, W) gate of this mode (``None`` for uniform)."""
        k = self.num_branches
        if self.mode == "uniform":
            if bins is not None:
                raise ValueError("bins must be None in mode 'uniform'")
            return None
        if self.mode == "attention":
            if bins is not None:
                raise ValueError("bins must be None in mode 'attention' (the gate is learned from x)")
            return F.softmax(self.attention(x), dim=1)
        if bins is None:
            raise ValueError("mode 'depth' needs bins: integer (B, H, W) depth bins or a (B, K, H, W) gate")
        if isinstance(bins, torch.Tensor) and bins.is_floating_point():
            _check_gate(bins, x, k, "bins")
            return bins.to(x.dtype)
        gate = bin_gate(bins, k, dtype=x.dtype)
        _check_gate(gate, x, k, "bins")
        return gate

    def forward(self, x: torch.Tensor, bins: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor(x, "x", 4)
        gate = self.gate(x, bins)
        outs = torch.stack([branch(x) for branch in self.branches], dim=1)
        self.last_gate = None if gate is None else gate.detach()
        if gate is None:
            return outs.mean(dim=1)
        return gated_sum(outs, gate)


class RecurrentRefinement(nn.Module):
    """Recurrent refinement (thesis ch. 3): ``pred_{l} = block(concat(features, pred_{l-1}))``
    for ``l = 1..loops``, with the same ``block`` (shared weights) at every loop.

    ``forward(features, prediction)`` returns the list of the ``loops`` refined predictions (put
    a loss on each; the thesis's gains saturate after 2 loops). Unrolling more loops adds no
    parameters; ``forward(..., loops=n)`` overrides the loop count for one call.

    Args:
        block: maps ``features.C + prediction.C`` channels to ``prediction.C`` channels, size kept.
        loops: default number of loops (>= 1).

    Example:
        >>> import torch
        >>> from pixelwise.nn import conv_norm_act
        >>> block = torch.nn.Sequential(conv_norm_act(8 + 3, 8), torch.nn.Conv2d(8, 3, 1))
        >>> preds = RecurrentRefinement(block, loops=2)(torch.randn(1, 8, 8, 8), torch.randn(1, 3, 8, 8))
        >>> len(preds), preds[-1].shape
        (2, torch.Size([1, 3, 8, 8]))
    """

    def __init__(self, block: nn.Module, loops: int = 2) -> None:
        super().__init__()
        if not isinstance(block, nn.Module):
            raise WrongTypeError(f"block must be an nn.Module, got {type(block).__name__}")
        self.block = block
        self.loops = check_positive_int(loops, "loops")

    def forward(self, features: torch.Tensor, prediction: torch.Tensor, loops: int | None = None) -> list[torch.Tensor]:
        check_tensor(features, "features", 4)
        check_tensor(prediction, "prediction", 4)
        if features.shape[0] != prediction.shape[0] or features.shape[2:] != prediction.shape[2:]:
            raise ShapeError(f"prediction must have the batch and size of features {tuple(features.shape)}, "
                             f"got {tuple(prediction.shape)}")
        loops = self.loops if loops is None else check_positive_int(loops, "loops")
        preds = []
        for _ in range(loops):
            new = self.block(torch.cat([features, prediction], dim=1))
            if new.shape != prediction.shape:
                raise ShapeError(f"block must return the prediction's shape {tuple(prediction.shape)}, "
                                 f"got {tuple(new.shape)}")
            preds.append(new)
            prediction = new
        return preds


def _gate_branch(channels: int, hidden: int, out: int, norm: NormSpec) -> nn.Sequential:
    """Small gating branch: 3x3 conv-norm-ReLU to ``hidden``, then a 1x1 conv to ``out`` logits."""
    return nn.Sequential(conv_norm_act(channels, hidden, 3, norm=norm), nn.Conv2d(hidden, out, 1))


class PagResidual(nn.Module):
    """Pixel-wise attentional gating residual (thesis ch. 4): ``O = I + G * F(I)``.

    ``G`` (B, 1, H, W) is a binary per-pixel gate: two logits (off, on) from a small branch on
    ``I`` (3x3 conv-BN-ReLU to ``gate_hidden`` channels, 1x1 conv to 2), passed through
    :func:`pixelwise.ops.gumbel_gate` (hard, straight-through; noise-free argmax in eval mode)
    at temperature ``self.tau`` (set it from :func:`pixelwise.ops.annealed_tau` while training).

    Args:
        channels: of ``I`` and ``O``.
        body: ``F``, mapping ``channels`` to ``channels`` at the same size. Default: 3x3
            conv-BN-ReLU then 3x3 conv-BN (no ReLU before the sum, as in a ResNet residual).
        gate_hidden: channels of the gating branch (default ``max(channels // 4, 1)``).
        tau: initial temperature (thesis: 1, annealed to 0.1).

    After a forward, ``last_gate`` holds ``G`` (with its straight-through graph, for the
    sparsity loss), ``last_on_fraction`` its mean as a float (the share of pixels at which
    ``F`` counts in a FLOP budget), and :meth:`sparsity_loss` gives ``KL(rho || mean G)``.
    ``forward(x, gate=...)`` uses a given (B, 1, H, W) gate instead (tests, ablations).

    Example:
        >>> import torch
        >>> block = PagResidual(8)
        >>> y = block(torch.randn(2, 8, 16, 16))
        >>> y.shape, 0.0 <= block.last_on_fraction <= 1.0
        (torch.Size([2, 8, 16, 16]), True)
    """

    def __init__(self, channels: int, body: nn.Module | None = None, gate_hidden: int | None = None,
                 tau: float = 1.0, *, norm: NormSpec = "batch") -> None:
        super().__init__()
        channels = check_positive_int(channels, "channels")
        gate_hidden = max(channels // 4, 1) if gate_hidden is None else check_positive_int(gate_hidden, "gate_hidden")
        if body is None:
            body = nn.Sequential(conv_norm_act(channels, channels, 3, norm=norm),
                                 conv_norm_act(channels, channels, 3, norm=norm, act=None))
        elif not isinstance(body, nn.Module):
            raise WrongTypeError(f"body must be an nn.Module or None, got {type(body).__name__}")
        self.channels = channels
        self.body = body
        self.gate_branch = _gate_branch(channels, gate_hidden, 2, norm)
        self.tau = check_float(tau, "tau", low=0, low_open=True)
        self.last_gate: torch.Tensor | None = None
        self.last_on_fraction: float | None = None

    def gate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The binary (B, 1, H, W) "on" gate of ``x``."""
        return gumbel_gate(self.gate_branch(x), self.tau, generator=generator, training=self.training)[:, 1:2]

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        gate = _input_gate(self, x, gate, generator, 1)
        residual = self.body(x)
        if residual.shape != x.shape:
            raise ShapeError(f"body must keep the shape {tuple(x.shape)}, got {tuple(residual.shape)}")
        self.last_gate = gate
        self.last_on_fraction = float(gate.detach().mean())
        return x + gate * residual

    def sparsity_loss(self, rho: float) -> torch.Tensor:
        """``KL(rho || mean G)`` of the last forward (this layer only; sum it over layers)."""
        if self.last_gate is None:
            raise RuntimeError("sparsity_loss needs a forward pass first")
        return kl_sparsity(self.last_gate, rho)


def _input_gate(module, x: torch.Tensor, gate: torch.Tensor | None, generator, categories: int) -> torch.Tensor:
    """Check ``x`` against ``module.channels``; the given ``gate`` (checked) or ``module.gate(x)``."""
    check_tensor(x, "x", 4)
    if x.shape[1] != module.channels:
        raise ShapeError(f"x must have {module.channels} channels, got shape {tuple(x.shape)}")
    if gate is None:
        return module.gate(x, generator)
    _check_gate(gate, x, categories)
    return gate


class MultiPool(nn.Module):
    """MultiPool (thesis ch. 4): per-pixel choice among 3x3 conv-norm-act branches of the given
    dilations (0 = the identity: the input is copied), ``O = sum_k W_k * M_k``.

    The gate ``W`` (B, K, H, W) comes from a small branch on ``x`` (3x3 conv-BN-ReLU, 1x1 conv
    to K logits): ``mode="pag"`` a one-hot Gumbel gate (:func:`pixelwise.ops.gumbel_gate`, hard,
    straight-through, argmax at eval, temperature ``self.tau``); ``mode="softmax"`` the softmax
    weighted average. ``forward(x, gate=...)`` uses a given gate. This implementation computes
    every branch densely (no perforated convolution); ``last_gate`` (detached) tells which
    pixels each branch would need.

    Example:
        >>> import torch
        >>> mp = MultiPool(8)
        >>> mp(torch.randn(1, 8, 24, 24)).shape, mp.last_gate.shape
        (torch.Size([1, 8, 24, 24]), torch.Size([1, 7, 24, 24]))
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (0, 1, 2, 4, 6, 8, 10), mode: str = "pag",
                 gate_hidden: int | None = None, tau: float = 1.0, *, norm: NormSpec = "batch", act="relu") -> None:
        super().__init__()
        channels = check_positive_int(channels, "channels")
        self.dilations = _check_dilations(dilations, "dilations", 0)
        self.mode = check_choice(mode, "mode", MULTIPOOL_MODES)
        gate_hidden = max(channels // 4, 1) if gate_hidden is None else check_positive_int(gate_hidden, "gate_hidden")
        self.channels = channels
        self.branches = nn.ModuleList(
            nn.Identity() if d == 0 else conv_norm_act(channels, channels, 3, dilation=d, norm=norm, act=act)
            for d in self.dilations)
        self.gate_branch = _gate_branch(channels, gate_hidden, len(self.dilations), norm)
        self.tau = check_float(tau, "tau", low=0, low_open=True)
        self.last_gate: torch.Tensor | None = None

    def gate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The (B, K, H, W) gate of ``x`` for this mode."""
        logits = self.gate_branch(x)
        if self.mode == "softmax":
            return F.softmax(logits, dim=1)
        return gumbel_gate(logits, self.tau, generator=generator, training=self.training)

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        gate = _input_gate(self, x, gate, generator, len(self.dilations))
        self.last_gate = gate.detach()
        return gated_sum([branch(x) for branch in self.branches], gate)
