"""kNN refinement of range-image predictions, per point (RangeNet++ post-processing).

A range-image network labels pixels, but evaluation is per point, and several points share a
pixel (only the closest is kept in the image). :func:`knn_refine` gives every point of the scan
a label by a vote among the pixels around its own, keeping only neighbours whose range is close
to the point's range, so a far point behind a foreground pixel does not inherit the foreground
label, and label "bleeding" across depth discontinuities is removed.

The rule, for a point ``p`` with range ``r_p`` projected to pixel ``(v, u)``:

1. Take the ``window x window`` block of the range image centred on ``(v, u)``; positions outside
   the image count as empty pixels. A pixel is *empty* when its range is negative (or NaN).
2. The centre pixel's range is replaced by ``r_p`` (the pixel may hold another point that won the
   collision), so the centre is at distance 0.
3. Unweighted distance ``d = |r_neighbour - r_p|``; ``d = inf`` for empty neighbours.
4. Weighted distance ``d * g(di, dj)`` with the inverse Gaussian of RangeNet++:
   ``g = 1 - G / sum(G)``, ``G(di, dj) = exp(-(di^2 + dj^2) / (2 sigma^2))`` over the window offsets
   ``(di, dj)``. Because ``G`` is normalised to sum 1, every weight lies in ``[1 - 1/sum(G), 1)``:
   the weighting only breaks near-ties in range difference in favour of nearer pixels, as in the
   reference implementation whose numbers the paper reports.
5. The ``k`` neighbours with the smallest weighted distance are selected. Ties are broken by the
   position in the window, row-major (lower index first), so the result is deterministic.
6. Among those, neighbours whose *unweighted* distance exceeds ``cutoff`` (metres) are dropped
   (empty neighbours always are); each remaining neighbour gives one vote to its pixel label,
   except votes for ``ignore_index``, which are discarded.
7. The point takes the class with the most votes; ties go to the lowest class id. A point with no
   valid vote keeps the label of its own pixel, ``pixel_labels[v, u]``.

The computation is vectorised: windows are gathered by index arithmetic on the padded,
flattened images, ``chunk_size`` points at a time (memory ~ ``chunk_size * window^2`` per
intermediate), with a stable sort per row and a one-hot vote by ``scatter_add_``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import WrongTypeError, check_float, check_int, check_odd, check_positive_int

__all__ = ["knn_refine"]


def _check_args(range_image, pixel_labels, point_range, u, v, window, k, sigma, cutoff,
                num_classes, ignore_index, chunk_size) -> None:
    tensors = {"range_image": range_image, "pixel_labels": pixel_labels, "point_range": point_range,
               "u": u, "v": v}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise WrongTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if range_image.dim() != 2 or not range_image.is_floating_point():
        raise ValueError(f"range_image: expected a floating-point (H, W) tensor, got {range_image.dtype} "
                         f"{tuple(range_image.shape)}")
    if pixel_labels.shape != range_image.shape or pixel_labels.is_floating_point() or pixel_labels.dtype == torch.bool:
        raise ValueError(f"pixel_labels: expected an integer tensor of shape {tuple(range_image.shape)}, got "
                         f"{pixel_labels.dtype} {tuple(pixel_labels.shape)}")
    if point_range.dim() != 1 or not point_range.is_floating_point():
        raise ValueError(f"point_range: expected a floating-point (N,) tensor, got {point_range.dtype} "
                         f"{tuple(point_range.shape)}")
    n = point_range.shape[0]
    for name, t in (("u", u), ("v", v)):
        if t.shape != (n,) or t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f"{name}: expected an integer tensor of shape ({n},) like point_range, got "
                             f"{t.dtype} {tuple(t.shape)}")
    for name, t in tensors.items():
        if t.device != range_image.device:
            raise ValueError(f"{name} must be on the device of range_image ({range_image.device}), got {t.device}")
    if point_range.dtype != range_image.dtype:
        raise ValueError(f"point_range must have the dtype of range_image ({range_image.dtype}), got {point_range.dtype}")
    window = check_odd(window, "window")
    check_int(k, "k", min=1, max=window * window)
    check_float(sigma, "sigma", low=0, low_open=True)
    check_float(cutoff, "cutoff", low=0, low_open=True, allow_inf=True)
    check_positive_int(num_classes, "num_classes")
    check_int(ignore_index, "ignore_index")
    check_positive_int(chunk_size, "chunk_size")
    h, w = range_image.shape
    if n:
        if int(u.min()) < 0 or int(u.max()) >= w:
            raise ValueError(f"u: column indices must lie in [0, {w - 1}], got range [{int(u.min())}, {int(u.max())}]")
        if int(v.min()) < 0 or int(v.max()) >= h:
            raise ValueError(f"v: row indices must lie in [0, {h - 1}], got range [{int(v.min())}, {int(v.max())}]")
        if not bool(torch.isfinite(point_range).all()):
            raise ValueError("point_range must be finite")
    if pixel_labels.numel() and (int(pixel_labels.min()) < 0 or int(pixel_labels.max()) >= num_classes):
        raise ValueError(f"pixel_labels: values must lie in [0, num_classes={num_classes}), got range "
                         f"[{int(pixel_labels.min())}, {int(pixel_labels.max())}]")


def inverse_gaussian_weights(window: int, sigma: float, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """The ``(window * window,)`` row-major weights ``1 - G / sum(G)`` with
    ``G = exp(-(di^2 + dj^2) / (2 sigma^2))`` of the offset ``(di, dj)`` from the window centre."""
    half = window // 2
    off = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(off.view(-1, 1).square() + off.view(1, -1).square()) / (2.0 * float(sigma) ** 2))
    return (1.0 - g / g.sum()).reshape(-1).to(dtype=dtype, device=device)


def knn_refine(
    range_image: torch.Tensor,
    pixel_labels: torch.Tensor,
    point_range: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    *,
    window: int = 7,
    k: int = 7,
    sigma: float = 1.0,
    cutoff: float = 1.0,
    num_classes: int = 20,
    ignore_index: int = 0,
    chunk_size: int = 32768,
) -> torch.Tensor:
    """Label every point of a scan by a range-gated kNN vote on the range image (RangeNet++).

    See the module docstring for the exact rule (RangeNet++ inverse-Gaussian weighting,
    stable tie-breaking by window position, cutoff on the unweighted range difference, votes for
    ``ignore_index`` discarded, ties to the lowest class id, fallback to the point's pixel label).

    Args:
        range_image: ``(H, W)`` float range of the point kept at each pixel; negative (e.g. -1)
            or NaN where the pixel is empty.
        pixel_labels: ``(H, W)`` integer per-pixel labels (the network's argmax), in
            ``[0, num_classes)``.
        point_range: ``(N,)`` range of every point of the scan (same dtype as ``range_image``),
            including points that lost the collision for their pixel.
        u: ``(N,)`` integer column of each point, in ``[0, W)``.
        v: ``(N,)`` integer row of each point, in ``[0, H)``.
        window: odd side of the search window (7 in RangeNet++).
        k: number of nearest neighbours that vote, ``1 <= k <= window**2``.
        sigma: standard deviation, in pixels, of the inverse Gaussian over window offsets.
        cutoff: neighbours whose ``|range difference|`` exceeds this (metres) do not vote
            (``float("inf")`` disables the cutoff; empty pixels never vote).
        num_classes: number of classes (labels lie in ``[0, num_classes)``).
        ignore_index: votes for this class are discarded (SemanticKITTI's "unlabeled" 0).
        chunk_size: points processed at once; bounds memory to about
            ``chunk_size * window**2 * 40`` bytes.

    Returns:
        ``(N,)`` int64 labels on the device of ``range_image``.

    Example:
        >>> rng = torch.tensor([[5.0, 5.0, -1.0], [5.0, 5.0, 20.0]])
        >>> lab = torch.tensor([[3, 3, 0], [3, 1, 1]])
        >>> knn_refine(rng, lab, torch.tensor([5.0, 20.0]), torch.tensor([1, 2]), torch.tensor([1, 1]),
        ...            window=3, k=5, num_classes=4)
        tensor([3, 1])
    """
    _check_args(range_image, pixel_labels, point_range, u, v, window, k, sigma, cutoff,
                num_classes, ignore_index, chunk_size)
    device, dtype = range_image.device, range_image.dtype
    w = range_image.shape[1]
    n = point_range.shape[0]
    out = torch.empty(n, dtype=torch.long, device=device)
    if n == 0:
        return out

    half = window // 2
    wp = w + 2 * half
    # Padded, flattened images: the border is empty (range -1) and labelled ignore-like (never votes
    # because its distance is inf).
    rng_pad = F.pad(range_image, (half, half, half, half), value=-1.0)
    empty = ~(rng_pad >= 0)  # negative or NaN
    rng_flat = rng_pad.masked_fill(empty, float("inf")).reshape(-1)
    lab_flat = F.pad(pixel_labels.long(), (half, half, half, half), value=0).reshape(-1)

    offs = torch.arange(window, device=device)
    win_offsets = (offs.view(-1, 1) * wp + offs.view(1, -1)).reshape(-1)  # (window^2,) row-major
    centre = (window * window) // 2
    weights = inverse_gaussian_weights(window, sigma, dtype=dtype, device=device)
    u = u.long()
    v = v.long()

    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        pr = point_range[start:stop]
        # Top-left corner of the window in padded coordinates is (v, u).
        idx = (v[start:stop] * wp + u[start:stop]).unsqueeze(1) + win_offsets.unsqueeze(0)
        nbr = rng_flat[idx]                                     # (C, window^2), inf where empty
        nbr[:, centre] = pr
        dist = (nbr - pr.unsqueeze(1)).abs()                    # unweighted; inf where empty
        # inf * weight stays inf (every weight > 0); the centre distance is 0.
        weighted = dist * weights
        order = torch.sort(weighted, dim=1, stable=True).indices[:, :k]
        sel_dist = torch.gather(dist, 1, order)
        sel_lab = torch.gather(lab_flat[idx], 1, order)
        valid = torch.isfinite(sel_dist) & (sel_dist <= cutoff) & (sel_lab != ignore_index)
        votes = torch.zeros(stop - start, num_classes, dtype=torch.int32, device=device)
        votes.scatter_add_(1, sel_lab, valid.to(torch.int32))
        best = votes.argmax(dim=1)  # first maximal index -> lowest class id on ties
        own = lab_flat[idx[:, centre]]
        out[start:stop] = torch.where(votes.sum(dim=1) > 0, best, own)
    return out
