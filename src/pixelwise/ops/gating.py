"""Gating arithmetic of Kong's thesis: depth-aware gating (ch. 3) and pixel-wise attentional
gating, PAG (ch. 4). Stateless tensor functions; the modules live in :mod:`pixelwise.nn.gating`.

* :func:`depth_bins` / :func:`bin_gate` -- quantise depth into bins ordered far -> near, and the
  one-hot (B, K, H, W) gate of those bins.
* :func:`gated_sum` -- ``sum_k gate_k * branch_k`` per pixel.
* :func:`gumbel_noise` / :func:`gumbel_gate` -- Gumbel-max one-hot gates with straight-through
  gradients (forward: ``onehot(argmax(log_softmax(logits) + m))``; backward: the gradient of
  ``softmax((log_softmax(logits) + m) / tau)``). The thesis prints ``log(alpha + m)``; the
  official code adds the noise to ``log(softmax(logits))``, which is what is done here.
* :func:`kl_sparsity` -- the per-layer sparsity penalty ``KL(rho || mean(G))``.
* :func:`annealed_tau` -- the temperature schedule (1 -> 0.1 in the thesis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..checks import (
    OutOfRangeError,
    ShapeError,
    WrongTypeError,
    check_bool,
    check_choice,
    check_float,
    check_floats,
    check_int,
    check_tensor,
)

__all__ = [
    "DEFAULT_DEPTH_EDGES",
    "TAU_MIN",
    "annealed_tau",
    "bin_gate",
    "depth_bins",
    "gated_sum",
    "gumbel_gate",
    "gumbel_noise",
    "kl_sparsity",
]

#: Default depth edges (metres) of the 5 bins: a doubling of depth halves an object's apparent size,
#: as a halving of the dilation (1, 2, 4, 8, 16) halves the pooling field. The thesis does not
#: print its edges; pass your own for another depth range.
DEFAULT_DEPTH_EDGES = (2.0, 4.0, 8.0, 16.0)

#: Smallest temperature :func:`gumbel_gate` uses; smaller values are clamped up to it.
TAU_MIN = 0.05

# Uniform draws are kept inside [_U_EPS, 1 - _U_EPS] so the Gumbel noise -log(-log(u)) is finite.
_U_EPS = 1e-10


def depth_bins(depth: torch.Tensor, edges: Sequence[float] = DEFAULT_DEPTH_EDGES, *,
               invalid_bin: int | None = None) -> torch.Tensor:
    """Quantise ``depth`` into ``len(edges) + 1`` bins ordered **far -> near** (long tensor).

    Bin 0 is the farthest (``depth >= edges[-1]``), bin ``K - 1`` the nearest
    (``depth < edges[0]``); a depth equal to an edge goes to the farther bin. The order is that
    of the branches of :class:`pixelwise.nn.DepthAwareGating`, whose dilations grow with the bin
    index: far -> small dilation, near -> large dilation (bin index == branch index).

    Args:
        depth: floating-point depth of any shape (e.g. (B, H, W)).
        edges: strictly increasing, positive bin edges (default :data:`DEFAULT_DEPTH_EDGES`,
            5 bins).
        invalid_bin: bin given to invalid pixels (depth ``<= 0``, NaN or inf: missing
            measurements). ``None`` (default): an invalid pixel is a :class:`ShapeError`.
            ``0`` (the farthest bin, the smallest pooling field) is the cautious choice.

    Example:
        >>> import torch
        >>> depth_bins(torch.tensor([1.0, 2.0, 3.0, 9.0, 50.0]))
        tensor([4, 3, 3, 1, 0])
        >>> depth_bins(torch.tensor([0.0, 5.0]), invalid_bin=0)
        tensor([0, 2])
    """
    check_tensor(depth, "depth", tuple(range(0, 9)))
    edges = check_floats(edges, "edges", low=0, low_open=True)
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise OutOfRangeError(f"edges must be strictly increasing, got {edges}")
    num_bins = len(edges) + 1
    if invalid_bin is not None:
        invalid_bin = check_int(invalid_bin, "invalid_bin", min=0, max=num_bins - 1)
    invalid = ~torch.isfinite(depth) | (depth <= 0)
    if invalid_bin is None and bool(invalid.any()):
        raise ShapeError(f"depth has {int(invalid.sum())} invalid values (<= 0, NaN or inf); "
                         f"pass invalid_bin= to bin them")
    boundaries = torch.tensor(edges, dtype=depth.dtype, device=depth.device)
    nearness = torch.bucketize(torch.nan_to_num(depth), boundaries, right=True)  # 0 nearest
    bins = (num_bins - 1) - nearness
    if invalid_bin is not None:
        bins = torch.where(invalid, torch.full_like(bins, invalid_bin), bins)
    return bins


def bin_gate(bins: torch.Tensor, num_bins: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot gate (B, K, H, W) of integer ``bins`` (B, H, W) with ``K = num_bins``.

    Example:
        >>> import torch
        >>> bin_gate(torch.tensor([[[0, 2]]]), 3)[0, :, 0]
        tensor([[1., 0.],
                [0., 0.],
                [0., 1.]])
    """
    num_bins = check_int(num_bins, "num_bins", min=1)
    if not isinstance(bins, torch.Tensor):
        raise WrongTypeError(f"bins must be a torch.Tensor, got {type(bins).__name__}")
    if bins.is_floating_point() or bins.is_complex() or bins.dtype == torch.bool:
        raise WrongTypeError(f"bins must have an integer dtype, got {bins.dtype}")
    if bins.dim() != 3:
        raise ShapeError(f"bins must be 3-D (B, H, W), got shape {tuple(bins.shape)}")
    if bins.numel() and (int(bins.min()) < 0 or int(bins.max()) >= num_bins):
        raise OutOfRangeError(f"bins must lie in [0, {num_bins - 1}], got [{int(bins.min())}, {int(bins.max())}]")
    return F.one_hot(bins.long(), num_bins).permute(0, 3, 1, 2).to(dtype)


def gated_sum(branches: torch.Tensor | Sequence[torch.Tensor], gate: torch.Tensor) -> torch.Tensor:
    """``sum_k gate[:, k] * branches[:, k]``: per-pixel gating of K branches.

    Args:
        branches: (B, K, C, H, W), or a list of K tensors (B, C, H, W).
        gate: (B, K, H, W), broadcast over the C channels (one-hot: selects a branch exactly;
            ``1/K``: the mean of the branches).

    Returns:
        (B, C, H, W).

    Example:
        >>> import torch
        >>> a, b = torch.ones(1, 2, 1, 2), 3 * torch.ones(1, 2, 1, 2)
        >>> gate = torch.tensor([[[[1.0, 0.5]], [[0.0, 0.5]]]])
        >>> gated_sum([a, b], gate)[0, 0]
        tensor([[1., 2.]])
    """
    if isinstance(branches, (list, tuple)):
        if not branches:
            raise OutOfRangeError("branches must hold at least one tensor")
        for i, b in enumerate(branches):
            check_tensor(b, f"branches[{i}]", 4)
            if b.shape != branches[0].shape:
                raise ShapeError(f"branches[{i}] has shape {tuple(b.shape)}, branches[0] {tuple(branches[0].shape)}")
        branches = torch.stack(list(branches), dim=1)
    check_tensor(branches, "branches", 5)
    check_tensor(gate, "gate", 4)
    b, k, _, h, w = branches.shape
    if tuple(gate.shape) != (b, k, h, w):
        raise ShapeError(f"gate must have shape (B, K, H, W) = {(b, k, h, w)}, got {tuple(gate.shape)}")
    return (branches * gate.unsqueeze(2)).sum(dim=1)


def gumbel_noise(shape, *, generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(u))``, ``u`` uniform clamped to ``[1e-10, 1 - 1e-10]``
    so every draw is finite (|noise| < 24). The draws :func:`gumbel_gate` adds, for a given
    ``generator`` state."""
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    u = u.clamp(_U_EPS, 1.0 - _U_EPS)
    return -torch.log(-torch.log(u))


def gumbel_gate(logits: torch.Tensor, tau: float = 1.0, *, hard: bool = True, dim: int = 1,
                generator: torch.Generator | None = None, training: bool = True) -> torch.Tensor:
    """Gumbel-max gate over the category dimension ``dim`` of ``logits``.

    Training (``training=True``): ``y = log_softmax(logits) + m`` with Gumbel noise ``m``
    (:func:`gumbel_noise`), soft sample ``s = softmax(y / tau)``.

    * ``hard=True`` (straight-through, as in the thesis): the forward value is exactly
      ``onehot(argmax(y))``; the gradient is that of ``s``.
    * ``hard=False``: ``s`` itself.

    Evaluation (``training=False``): the noise-free ``onehot(argmax(logits))`` (``hard=True``;
    the gradient is that of ``softmax(log_softmax(logits) / tau)``) or that softmax
    (``hard=False``).

    ``tau`` must be ``> 0`` and is clamped up to :data:`TAU_MIN` (0.05): together with the
    clamped uniform draws this keeps value and gradient finite (``F.gumbel_softmax`` can give
    NaN). ``generator`` (optional) must live on ``logits``' device. A binary gate is two categories, e.g. ``gumbel_gate(logits_2ch)[:, 1:]`` = "on".

    Example:
        >>> import torch
        >>> g = gumbel_gate(torch.randn(2, 3, 4, 4), tau=0.5, generator=torch.Generator().manual_seed(0))
        >>> g.shape, bool(((g == 0) | (g == 1)).all()), bool((g.sum(1) == 1).all())
        (torch.Size([2, 3, 4, 4]), True, True)
        >>> gumbel_gate(torch.tensor([[0.1, 2.0, -1.0]]), training=False)
        tensor([[0., 1., 0.]])
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise WrongTypeError(f"logits must be a floating-point torch.Tensor, got "
                             f"{getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.dim() == 0:
        raise ShapeError("logits must have a category dimension, got a 0-d tensor")
    dim = check_int(dim, "dim", min=-logits.dim(), max=logits.dim() - 1)
    tau = max(check_float(tau, "tau", low=0, low_open=True), TAU_MIN)
    hard = check_bool(hard, "hard")
    training = check_bool(training, "training")
    y = F.log_softmax(logits, dim=dim)
    if training:
        y = y + gumbel_noise(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    soft = F.softmax(y / tau, dim=dim)
    if not hard:
        return soft
    index = y.argmax(dim=dim, keepdim=True)
    one_hot = torch.zeros_like(logits).scatter_(dim, index, 1.0)
    # ``soft - soft.detach()`` is exactly 0 in the forward pass, so the value is exactly one-hot.
    return one_hot + (soft - soft.detach())


def kl_sparsity(gate: torch.Tensor | float, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """``KL(rho || g)`` with ``g`` the mean of ``gate`` (the gate-on fraction of one layer).

    ``KL(rho || g) = rho log(rho / g) + (1 - rho) log((1 - rho) / (1 - g))`` (Bernoulli KL, the
    target ``rho`` first, eq. 4.5 of the thesis; ``0 log 0 = 0``). ``g`` is clamped to
    ``[eps, 1 - eps]`` so the value is finite (the gradient is zero where the clamp bites). One
    layer per call: the caller sums the layers (``sum_l KL(rho || g_l)``, weight 1e-4 in the
    thesis), never one penalty on the average over layers.

    Args:
        gate: the "on" gate or its probability (any shape; its mean is taken), or the fraction.
        rho: target on-fraction in [0, 1].
        eps: clamp of ``g``, in (0, 0.5).

    Example:
        >>> import torch, math
        >>> round(float(kl_sparsity(torch.tensor([1.0, 0.0, 0.0, 0.0]), 0.5)), 6) == round(0.5 * math.log(4 / 3), 6)
        True
    """
    rho = check_float(rho, "rho", low=0, high=1)
    eps = check_float(eps, "eps", low=0, high=0.5, low_open=True, high_open=True)
    if isinstance(gate, torch.Tensor):
        if not gate.is_floating_point():
            gate = gate.float()
        if gate.numel() == 0:
            raise ShapeError("gate must not be empty")
        g = gate.mean()
    else:
        g = torch.tensor(check_float(gate, "gate", low=0, high=1))
    g = g.clamp(eps, 1 - eps)
    const = (rho * math.log(rho) if rho > 0 else 0.0) + ((1 - rho) * math.log(1 - rho) if rho < 1 else 0.0)
    return const - rho * torch.log(g) - (1 - rho) * torch.log1p(-g)


def annealed_tau(step: int, total_steps: int, start: float = 1.0, end: float = 0.1,
                 mode: str = "geometric") -> float:
    """Temperature at ``step``: ``start`` at step 0, ``end`` from ``total_steps`` on.

    ``mode="geometric"`` (default): ``start * (end / start) ** (step / total_steps)`` (a
    constant factor per step); ``"linear"``: ``start + (end - start) * step / total_steps``.
    The thesis anneals 1 -> 0.1 (the released demo keeps 0.1 fixed: ``start=end=0.1``).

    Example:
        >>> annealed_tau(0, 100), round(annealed_tau(50, 100), 6), annealed_tau(200, 100)
        (1.0, 0.316228, 0.1)
        >>> annealed_tau(50, 100, mode="linear")
        0.55
    """
    step = check_int(step, "step", min=0)
    total_steps = check_int(total_steps, "total_steps", min=1)
    start = check_float(start, "start", low=0, low_open=True)
    end = check_float(end, "end", low=0, low_open=True)
    check_choice(mode, "mode", ("geometric", "linear"))
    t = min(step, total_steps) / total_steps
    if t >= 1:
        return end
    if mode == "geometric":
        return start * (end / start) ** t
    return start + (end - start) * t
