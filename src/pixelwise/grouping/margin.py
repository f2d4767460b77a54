"""Margin selection for the spherical embedding loss (Kong & Fowlkes 2018, Sec. 3.2).

The pairwise loss charges a pair of pixels from different instances ``max(0, s_ij - alpha)``
with ``s_ij = (1 + x_i . x_j) / 2``. Collapse every instance onto one unit vector: the loss can
reach zero only if the ``n`` instance vectors all satisfy ``x_i . x_j <= 2 alpha - 1``. The
smallest workable margin is therefore set by the best spherical code: the arrangement of ``n``
points on ``S^(D-1)`` whose largest pairwise cosine ``c*`` is as small as possible (Tammes's
problem for ``D = 3``), and

    alpha_zero_loss = (1 + c*) / 2.

Two ways to get at it:

* :func:`paper_margin_bound` -- Proposition 2 of the paper, for ``D = 3`` only. Its proof
  (supplement, Eq. 1-2) turns the asymptotic upper bound on the Tammes distance,
  ``d <= (8 pi / (sqrt(3) n))^(1/2)``, into ``s >= 1 - 2 pi / (sqrt(3) n)`` for the closest pair.
  The main text prints ``sqrt(3N)`` in the denominator, a typo: only ``sqrt(3) n`` reproduces
  the quoted 0.093 / 0.274 / 0.395 / 0.482 for 4..7 instances. It is a *lower* bound on the
  closest-pair similarity: any margin below it leaves some pair with positive loss, but zero loss
  needs ``alpha >= alpha_zero_loss``, which for small ``n`` is much larger (1/3, 1/2, 1/2, 0.605
  for 4..7 points), so "alpha can be set as small as" in the paper should read "no smaller than".
* :func:`best_packing` -- a numerical spherical code in any dimension (below).

The paper's "antipodal axes" rule for high dimensions: ``2 D`` groups fit at ``alpha = 0.5``
(cosine 0) by placing pairs antipodally on ``D`` orthogonal axes. It is tight: at most ``2 D``
vectors in ``R^D`` can have pairwise non-positive inner products (Rankin), so ``alpha = 0.5``
admits zero loss exactly when ``n <= 2 D``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..checks import WrongTypeError, check_int

__all__ = ["Packing", "best_packing", "margin_table", "paper_margin_bound"]

# Annealing schedule of the smoothed max (temperature) and of the step: fixed, they work from 2 to
# 64 dimensions and 2 to 128 points without tuning.
_T_START, _T_END = 10.0, 3000.0
_LR_START, _LR_END = 0.05, 1e-4
_BETA1, _BETA2 = 0.9, 0.999


def paper_margin_bound(n: int) -> float:
    """Proposition 2's margin for ``n`` instances on the 2-sphere: ``1 - 2 pi / (sqrt(3) n)``.

    Uses the supplement's ``sqrt(3) n`` (the main text's ``sqrt(3N)`` is a typo, see the module
    docstring). A necessary condition, not a sufficient one: below it some pair of instances
    always pays a loss.

    Args:
        n: number of instances, >= 2.

    Returns:
        The bound on the calibrated similarity ``s``; negative (vacuous) for ``n <= 3``.
    """
    n = check_int(n, "n", min=2)
    return 1.0 - 2.0 * math.pi / (math.sqrt(3.0) * n)


@dataclass(frozen=True)
class Packing:
    """``n`` unit vectors in ``R^dim`` spread as far apart as the optimiser managed.

    Attributes:
        points: ``(n, dim)`` float64, unit rows.
        max_cosine: the largest pairwise cosine ``c*`` (closest pair).
        min_angle_deg: the smallest pairwise angle in degrees, ``acos(c*)``.
        alpha: ``(1 + c*) / 2``, the smallest margin for which collapsing each of ``n`` instances
            onto one of these points gives zero loss.
    """

    points: np.ndarray
    max_cosine: float
    min_angle_deg: float
    alpha: float


def best_packing(dim: int, n: int, *, restarts: int = 8, steps: int = 1500, seed: int = 0) -> Packing:
    """Numerically maximise the smallest pairwise angle of ``n`` points on ``S^(dim-1)``.

    The generalised Tammes problem, solved by Riemannian gradient descent on a smoothed maximum
    of the pairwise cosines, ``(1/t) logsumexp(t c_ij)``, whose temperature ``t`` is annealed
    geometrically from 10 to 3000 so the objective moves from "spread everything" to "push the
    closest pair apart". Each step projects the gradient onto the tangent space of the sphere,
    takes an Adam-style step whose second moment is one scalar per point (rotation-equivariant:
    per-coordinate scaling would push points towards the coordinate diagonals and clump them),
    and renormalises every point. All restarts run as one batch; the best is kept. Reaches the
    known optima (simplex, cross-polytope, Tammes 5, 7, 12, 24 in 3-D) within about 0.01 degrees,
    in well under a second for ``n, dim <= 64``. Harder codes may need more restarts.

    Args:
        dim: ambient dimension ``D`` (the embedding dimension), >= 2.
        n: number of points (instances), >= 2.
        restarts: independent random starts, >= 1.
        steps: gradient steps per start, >= 1.
        seed: seed of the random starts; the result is deterministic in it.

    Returns:
        The best :class:`Packing` over the restarts.
    """
    dim = check_int(dim, "dim", min=2)
    n = check_int(n, "n", min=2)
    restarts = check_int(restarts, "restarts", min=1)
    steps = check_int(steps, "steps", min=1)
    seed = check_int(seed, "seed", min=0)

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(restarts, n, dim, generator=gen, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    diagonal = torch.eye(n, dtype=torch.bool)
    m = torch.zeros_like(x)
    v = torch.zeros(restarts, n, 1, dtype=torch.float64)
    for step in range(steps):
        frac = step / max(steps - 1, 1)
        t = _T_START * (_T_END / _T_START) ** frac
        lr = _LR_START * (_LR_END / _LR_START) ** frac
        cos = (x @ x.transpose(1, 2)).masked_fill(diagonal, -2.0)  # -2: self-pairs never count
        w = torch.softmax(t * cos.flatten(1), dim=1).view_as(cos)
        grad = (w + w.transpose(1, 2)) @ x  # d/dx of (1/t) logsumexp(t x_i . x_j), in closed form
        grad = grad - (grad * x).sum(-1, keepdim=True) * x  # tangent part only
        m = _BETA1 * m + (1 - _BETA1) * grad
        v = _BETA2 * v + (1 - _BETA2) * grad.pow(2).mean(-1, keepdim=True)
        m_hat = m / (1 - _BETA1 ** (step + 1))
        v_hat = v / (1 - _BETA2 ** (step + 1))
        x = x - lr * m_hat / (v_hat.sqrt() + 1e-12)
        x = x / x.norm(dim=-1, keepdim=True)

    worst = (x @ x.transpose(1, 2)).masked_fill(diagonal, -2.0).flatten(1).amax(1)
    best = int(worst.argmin())
    c = min(max(float(worst[best]), -1.0), 1.0)
    return Packing(points=x[best].numpy().copy(), max_cosine=c, min_angle_deg=math.degrees(math.acos(c)),
                   alpha=(1.0 + c) / 2.0)


def margin_table(dim: int, instances: list[int], *, restarts: int = 8, steps: int = 1500, seed: int = 0) -> list[dict]:
    """Margin facts for each instance count: the paper's bound, the packed optimum, the 2 D rule.

    Args:
        dim: embedding dimension, >= 2.
        instances: instance counts ``n`` (each >= 2).
        restarts, steps, seed: passed to :func:`best_packing`.

    Returns:
        One dict per ``n`` with keys ``n``, ``paper_bound`` (Proposition 2, only for ``dim == 3``,
        else None), ``max_cosine``, ``min_angle_deg``, ``alpha_zero_loss`` (from the packing) and
        ``antipodal_rule`` (True when ``n <= 2 dim``: ``alpha = 0.5`` admits zero loss).
    """
    dim = check_int(dim, "dim", min=2)
    if isinstance(instances, (str, bytes)) or not hasattr(instances, "__iter__"):
        raise WrongTypeError(f"instances must be a list of ints, got {type(instances).__name__}")
    rows = []
    for i, n in enumerate(instances):
        n = check_int(n, f"instances[{i}]", min=2)
        p = best_packing(dim, n, restarts=restarts, steps=steps, seed=seed)
        rows.append({
            "n": n,
            "paper_bound": paper_margin_bound(n) if dim == 3 else None,
            "max_cosine": p.max_cosine,
            "min_angle_deg": p.min_angle_deg,
            "alpha_zero_loss": p.alpha,
            "antipodal_rule": n <= 2 * dim,
        })
    return rows
