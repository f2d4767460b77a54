"""kNN refinement of range-image predictions, per point (RangeNet++ post-processing).

A range-image network labels pixels, but evaluation is per point, and several points share a
pixel (only the closest is kept in the image). :func:`knn_refine` gives every point of the scan
a label by a vote among the pixels around its own, keeping only neighbours whose range is close
to the point's range, so a far point behind a foreground pixel does not inherit the foreground
label, and label "bleeding" across depth discontinuities is removed.

Two modes (:data:`KNN_MODES`): ``"default"``, our documented rule below, and ``"reference"``,
point for point the post-processing ``KNN.py`` of RangeNet++ (also used by SqueezeSegV3), whose
numbers the papers report.

The default rule, for a point ``p`` with range ``r_p`` projected to pixel ``(v, u)``:

1. Take the ``window x window`` block of the range image centred on ``(v, u)``; positions outside
   the image count as empty pixels. A pixel is *empty* when its range is negative (or NaN).
2. The centre pixel's range is replaced by ``r_p`` (the pixel may hold another point that won the
   collision), so the centre is at distance 0.
3. Unweighted distance ``d = |r_neighbour - r_p|``; ``d = inf`` for empty neighbours.
4. Weighted distance ``d * g(di, dj)`` with the inverse Gaussian of RangeNet++:
   ``g = 1 - G / sum(G)``, ``G(di, dj) = exp(-(di^2 + dj^2) / (2 sigma^2))`` over the window offsets
   ``(di, dj)``, computed in float64 and cast to the range image's dtype. Because ``G`` is
   normalised to sum 1, every weight lies in ``[1 - 1/sum(G), 1)``: the weighting only breaks
   near-ties in range difference in favour of nearer pixels, as in the reference implementation.
5. The ``k`` neighbours with the smallest weighted distance are selected. Ties are broken by the
   position in the window, row-major (lower index first), so the result is deterministic.
6. Among those, neighbours whose *unweighted* distance exceeds ``cutoff`` (metres) are dropped
   (empty neighbours always are); each remaining neighbour gives one vote to its pixel label,
   except votes for ``ignore_index``, which are discarded.
7. The point takes the class with the most votes; ties go to the lowest class id. A point with no
   valid vote keeps the label of its own pixel, ``pixel_labels[v, u]``.

``mode="reference"`` differs in four places (the rest -- centre at distance 0, empty pixels at
``inf``, ``k`` smallest weighted distances, ties to the lowest class id -- is the same):

* **Border.** The reference unfolds the image with zero padding: positions outside the image have
  range 0 (a finite distance ``r_p * g``, not ``inf``) and label 0. Such a position is usually
  beyond the cutoff; if it is selected and within it, its vote goes to class 0 and is discarded,
  but it still takes one of the ``k`` places. Inside the image, negative ranges are empty
  (``inf``); NaN ranges, which the reference never sees, are empty too.
* **Weights.** ``G`` is computed as the reference computes it, in float32 on the CPU with torch's
  kernels (grid ``0..window-1``, mean ``(window-1)/2``, ``G = exp(-sq / (2 sigma^2)) /
  (2 pi sigma^2)``, ``g = 1 - G / sum(G)``), then cast to the range image's dtype. float32
  ``exp`` differs between libraries in the last bit, so other float32 code may not reproduce these
  weights bit for bit.
* **Cutoff.** It applies to the *weighted* distance, and ``cutoff <= 0`` means no cutoff at all:
  then every selected neighbour votes, even an empty pixel (distance ``inf``) when fewer than
  ``k`` positions of the window are non-empty. Likewise with ``cutoff=inf`` (``inf > inf`` is
  false). With a finite positive cutoff, empty pixels never vote.
* **Ignored class and fallback.** Class 0 is hard-coded as the ignored class (``ignore_index``
  must be 0): the reference argmaxes the votes over classes ``1..C-1`` and adds 1, so a point with
  no valid vote gets class **1** (the argmax of an all-zero vector), not its pixel's label.

The reference selects the ``k`` smallest with ``topk``, whose order among exact ties is
unspecified; here ties are broken by window position, lower index first, as in the default mode.

The computation is vectorised: windows are gathered by index arithmetic on the padded,
flattened images, ``chunk_size`` points at a time (memory ~ ``chunk_size * window^2`` per
intermediate), with a stable sort per row and a one-hot vote by ``scatter_add_``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..checks import WrongTypeError, check_choice, check_float, check_int, check_odd, check_positive_int

__all__ = ["KNN_MODES", "inverse_gaussian_weights", "knn_refine", "reference_inverse_gaussian_weights"]

KNN_MODES = ("default", "reference")  # our documented rule; RangeNet++'s KNN.py point for point


def _check_args(range_image, pixel_labels, point_range, u, v, window, k, sigma, cutoff,
                num_classes, ignore_index, chunk_size, mode) -> None:
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
    if mode == "reference":  # any number; <= 0 means no cutoff, as in the reference
        check_float(cutoff, "cutoff", allow_inf=True)
        check_int(num_classes, "num_classes", min=2)
        if check_int(ignore_index, "ignore_index") != 0:
            raise ValueError(f"ignore_index must be 0 with mode='reference' (RangeNet++'s KNN.py hard-codes class 0 "
                             f"as the ignored class), got {ignore_index}")
    else:
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


def reference_inverse_gaussian_weights(window: int, sigma: float, *, dtype=torch.float32,
                                       device=None) -> torch.Tensor:
    """The ``(window * window,)`` row-major weights ``1 - G / sum(G)`` as RangeNet++'s ``KNN.py``
    computes them: in float32 on the CPU, ``G = exp(-((x - m)^2 + (y - m)^2) / (2 sigma^2)) /
    (2 pi sigma^2)`` over the grid ``x, y = 0..window-1`` with ``m = (window - 1) / 2``; then cast
    to ``dtype`` and moved to ``device``. Equal to :func:`inverse_gaussian_weights` up to float32
    rounding (the constant factor cancels in the normalisation)."""
    variance = float(sigma) ** 2
    coords = torch.arange(window).float()
    mean = (window - 1) / 2.0
    sq = (coords.view(1, -1) - mean) ** 2 + (coords.view(-1, 1) - mean) ** 2  # exact: small half-integers
    g = (1.0 / (2.0 * math.pi * variance)) * torch.exp(-sq / (2.0 * variance))
    g = g / g.sum()
    weights = (1.0 - g).reshape(-1)
    if not bool(torch.isfinite(weights).all()):
        raise ValueError(f"sigma: the float32 Gaussian of sigma={sigma:g} over a {window}x{window} window "
                         "is not finite (sigma too small)")
    return weights.to(dtype=dtype, device=device)


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
    mode: str = "default",
) -> torch.Tensor:
    """Label every point of a scan by a range-gated kNN vote on the range image (RangeNet++).

    See the module docstring for the exact rules. ``mode="default"``: RangeNet++ inverse-Gaussian
    weighting, stable tie-breaking by window position, cutoff on the unweighted range difference,
    out-of-image positions empty, votes for ``ignore_index`` discarded, ties to the lowest class
    id, fallback to the point's pixel label. ``mode="reference"``: RangeNet++'s ``KNN.py`` point
    for point -- zero-padded border (range 0, label 0), float32 weights, cutoff on the weighted
    distance (none if ``cutoff <= 0``), class 0 ignored, fallback to class 1.

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
            (``float("inf")`` disables the cutoff; empty pixels never vote). Must be > 0.
            Reference mode: compared with the *weighted* difference; any number, ``<= 0`` (or
            ``inf``) means no cutoff, and then even selected empty pixels vote.
        num_classes: number of classes (labels lie in ``[0, num_classes)``; at least 2 in
            reference mode).
        ignore_index: votes for this class are discarded (SemanticKITTI's "unlabeled" 0); must
            be 0 in reference mode.
        chunk_size: points processed at once; bounds memory to about
            ``chunk_size * window**2 * 40`` bytes.
        mode: one of :data:`KNN_MODES`, ``"default"`` or ``"reference"``.

    Returns:
        ``(N,)`` int64 labels on the device of ``range_image``.

    Example:
        >>> rng = torch.tensor([[5.0, 5.0, -1.0], [5.0, 5.0, 20.0]])
        >>> lab = torch.tensor([[3, 3, 0], [3, 1, 1]])
        >>> knn_refine(rng, lab, torch.tensor([5.0, 20.0]), torch.tensor([1, 2]), torch.tensor([1, 1]),
        ...            window=3, k=5, num_classes=4)
        tensor([3, 1])
        >>> # Two points on a pixel labelled 0, at 12 m (no neighbour within 1 m) and at 9.1 m
        >>> # (neighbours 1.1 m away, 0.96 m once weighted by 0.876): the modes differ on both.
        >>> rng, lab = torch.tensor([[8.0, 8.0, 8.0]]), torch.tensor([[2, 0, 2]])
        >>> args = (rng, lab, torch.tensor([12.0, 9.1]), torch.tensor([1, 1]), torch.tensor([0, 0]))
        >>> knn_refine(*args, window=3, k=9, num_classes=3).tolist()  # no vote: own label
        [0, 0]
        >>> knn_refine(*args, window=3, k=9, num_classes=3, mode="reference").tolist()  # class 1; weighted cutoff
        [1, 2]
    """
    mode = check_choice(mode, "mode", KNN_MODES)
    reference = mode == "reference"
    _check_args(range_image, pixel_labels, point_range, u, v, window, k, sigma, cutoff,
                num_classes, ignore_index, chunk_size, mode)
    device, dtype = range_image.device, range_image.dtype
    w = range_image.shape[1]
    n = point_range.shape[0]
    out = torch.empty(n, dtype=torch.long, device=device)
    if n == 0:
        return out

    half = window // 2
    wp = w + 2 * half
    # Padded, flattened images; empty pixels (negative or NaN range) are at range inf. Default: the
    # border is empty too (inf, never votes). Reference: zero padding, range 0 and label 0.
    rng = range_image.masked_fill(~(range_image >= 0), float("inf"))
    rng_flat = F.pad(rng, (half, half, half, half), value=0.0 if reference else float("inf")).reshape(-1)
    lab_flat = F.pad(pixel_labels.long(), (half, half, half, half), value=0).reshape(-1)

    offs = torch.arange(window, device=device)
    win_offsets = (offs.view(-1, 1) * wp + offs.view(1, -1)).reshape(-1)  # (window^2,) row-major
    centre = (window * window) // 2
    if reference:
        weights = reference_inverse_gaussian_weights(window, sigma, dtype=dtype, device=device)
    else:
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
        # inf * weight stays inf (every off-centre weight > 0); the centre distance is 0.
        weighted = dist * weights
        order = torch.sort(weighted, dim=1, stable=True).indices[:, :k]
        sel_lab = torch.gather(lab_flat[idx], 1, order)
        votes = torch.zeros(stop - start, num_classes, dtype=torch.int32, device=device)
        if reference:
            valid = sel_lab != 0
            if cutoff > 0:  # on the weighted distance; "not >" lets inf vote when cutoff is inf
                valid &= ~(torch.gather(weighted, 1, order) > cutoff)
            votes.scatter_add_(1, sel_lab, valid.to(torch.int32))
            # argmax over classes 1.. (first maximal index), + 1: no vote at all gives class 1.
            out[start:stop] = votes[:, 1:].argmax(dim=1) + 1
            continue
        sel_dist = torch.gather(dist, 1, order)
        valid = torch.isfinite(sel_dist) & (sel_dist <= cutoff) & (sel_lab != ignore_index)
        votes.scatter_add_(1, sel_lab, valid.to(torch.int32))
        best = votes.argmax(dim=1)  # first maximal index -> lowest class id on ties
        own = lab_flat[idx[:, centre]]
        out[start:stop] = torch.where(votes.sum(dim=1) > 0, best, own)
    return out
