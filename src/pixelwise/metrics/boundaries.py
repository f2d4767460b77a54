"""Boundary precision / recall with the BSDS500 benchmark protocol (ODS, OIS, AP).

Protocol (as in BSDS500's ``evaluation_bdry_image`` / ``collect_eval_bdry``):

* the boundary probability map is thresholded at each threshold ``t`` (``prob >= t``) and thinned
  to one-pixel-wide lines (``bwmorph(..., 'thin', inf)``, here :func:`skimage.morphology.thin`);
* the thinned map is matched one-to-one against each human annotation separately, within a
  distance of ``max_dist`` times the image diagonal (0.0075 in BSDS, about 4 px on 481x321);
* counts: ``cntR`` = matched ground-truth pixels summed over annotators, ``sumR`` = ground-truth
  pixels summed over annotators, ``cntP`` = predicted pixels matched in *at least one*
  annotation, ``sumP`` = predicted pixels;
* ``R = cntR / sumR``, ``P = cntP / sumP`` with ``0 / 0 = 0`` (BSDS's ``x ./ (y + (y == 0))``),
  ``F = 2PR / (P + R)`` with 0 when ``P + R = 0``;
* ODS: best F over thresholds of the counts summed over the dataset; OIS: each image's counts at
  its own best-F threshold, summed, then F. Ties go to the lowest threshold (MATLAB ``max``).

Differences from the MATLAB code, on purpose:

* matching is a maximum-cardinality bipartite matching of pixel pairs within the radius
  (:func:`match_boundaries`), not ``correspondPixels``' min-cost assignment with outliers;
* ODS / OIS take the best of the evaluated thresholds; BSDS also interpolates R and P linearly
  between neighbouring thresholds, which can raise F slightly (third decimal, typically);
* AP integrates the curve by the trapezoidal rule (see :class:`BoundaryPR`), BSDS samples the
  linearly interpolated curve at recall 0:0.01:1.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.ndimage import distance_transform_edt
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree
from skimage.morphology import thin as skimage_thin

from ..checks import check_bool, check_float, check_floats, check_positive_int
from .instances import _as_masks, _to_numpy

__all__ = ["BoundaryPR", "boundaries_from_segmentation", "match_boundaries"]


def _as_boundary_map(x, name: str) -> np.ndarray:
    """``(H, W)`` bool map; 0/1 integer or float maps are accepted and converted."""
    return _as_masks(x, name, 2, "(H, W)")


class _Annotation:
    """One ground-truth boundary map prepared for repeated matching at a fixed radius."""

    def __init__(self, gt: np.ndarray, radius: float):
        self.radius = radius
        self.xy = np.argwhere(gt)
        self.tree = cKDTree(self.xy) if len(self.xy) else None
        # Pixels within the radius of some GT pixel: predictions elsewhere can never match, and
        # leaving them out of the KD-tree queries keeps noisy low-threshold maps cheap. The slack
        # keeps borderline pixels in; the KD-tree query below decides exactly.
        self.near = (distance_transform_edt(~gt) <= radius + 1e-6) if self.tree is not None else None

    def match(self, pred_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maximum one-to-one matching of ``(n, 2)`` predicted pixels to this map's pixels.

        Returns ``(pred_matched (n,), gt_matched (len(xy),))`` bool flags.
        """
        pred_matched = np.zeros(len(pred_xy), dtype=bool)
        gt_matched = np.zeros(len(self.xy), dtype=bool)
        if self.tree is None or len(pred_xy) == 0:
            return pred_matched, gt_matched
        rows = np.flatnonzero(self.near[pred_xy[:, 0], pred_xy[:, 1]])
        if rows.size == 0:
            return pred_matched, gt_matched
        # The bipartite graph (rows: candidate predicted pixels, columns: GT pixels) in CSR form.
        neighbours = self.tree.query_ball_point(pred_xy[rows], r=self.radius)
        lengths = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=len(neighbours))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.fromiter(itertools.chain.from_iterable(neighbours), dtype=np.int32, count=int(indptr[-1]))
        graph = csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(rows.size, len(self.xy)))
        match = maximum_bipartite_matching(graph, perm_type="column")
        pred_matched[rows[match >= 0]] = True
        gt_matched[match[match >= 0]] = True
        return pred_matched, gt_matched


def match_boundaries(pred, gt, max_dist: float = 0.0075) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of predicted and ground-truth boundary pixels within a tolerance.

    Two pixels may be matched when their Euclidean distance is at most
    ``max_dist * sqrt(H**2 + W**2)`` (BSDS convention: the tolerance is a fraction of the image
    diagonal). Among all one-to-one matchings the one with the most pairs is taken
    (Hopcroft-Karp, :func:`scipy.sparse.csgraph.maximum_bipartite_matching`).

    BSDS's ``correspondPixels`` instead solves a min-cost assignment in which leaving a pixel
    unmatched (an "outlier") costs far more than any match, so it too favours many matches and,
    among those, nearer pairs. Only the number of matched pixels enters the scores; it is the same
    for both whenever no matchable pair is left out by the assignment (e.g. a displaced line, or a
    doubled line against a single one). Maximum cardinality within the radius is the usual
    re-implementation choice; counts are not guaranteed to equal the MATLAB benchmark's to the
    pixel (its sparse assignment graph is an approximation).

    Args:
        pred: ``(H, W)`` bool predicted boundary map (numpy or torch, 0/1 accepted).
        gt: ``(H, W)`` bool ground-truth boundary map.
        max_dist: tolerance as a fraction of the image diagonal (0 allows exact matches only).

    Returns:
        ``(pred_matched, gt_matched)``: ``(H, W)`` bool maps of the matched pixels of each side
        (subsets of ``pred`` and ``gt``, with equal numbers of pixels).

    Example:
        >>> gt = np.zeros((100, 100), bool); gt[:, 10] = True
        >>> pred = np.zeros((100, 100), bool); pred[:, 11] = True  # 1 px off, tolerance 1.06 px
        >>> pm, gm = match_boundaries(pred, gt)
        >>> int(pm.sum()), int(gm.sum())
        (100, 100)
    """
    p = _as_boundary_map(pred, "pred")
    g = _as_boundary_map(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt: shapes differ, {p.shape} vs {g.shape}")
    radius = check_float(max_dist, "max_dist", low=0) * float(np.hypot(*p.shape))
    annotation = _Annotation(g, radius)
    pred_xy = np.argwhere(p)
    pm, gm = annotation.match(pred_xy)
    pred_matched = np.zeros_like(p)
    gt_matched = np.zeros_like(g)
    pred_matched[tuple(pred_xy[pm].T)] = True
    gt_matched[tuple(annotation.xy[gm].T)] = True
    return pred_matched, gt_matched


def boundaries_from_segmentation(seg) -> np.ndarray:
    """Boundary map of a label image: pixels whose right or lower neighbour has another label.

    Args:
        seg: ``(H, W)`` integer label map (numpy or torch), e.g. an instance or region map.

    Returns:
        ``(H, W)`` bool map, one pixel wide along each label change.

    Example:
        >>> boundaries_from_segmentation(np.array([[0, 0, 1], [0, 0, 1]])).astype(int).tolist()
        [[0, 1, 0], [0, 1, 0]]
    """
    s = _to_numpy(seg, "seg")
    if s.ndim != 2:
        raise ValueError(f"seg: expected a 2-D (H, W) label map, got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.integer) or s.dtype == bool):
        raise ValueError(f"seg: expected integer labels, got dtype {s.dtype}")
    b = np.zeros(s.shape, dtype=bool)
    b[:, :-1] |= s[:, 1:] != s[:, :-1]
    b[:-1, :] |= s[1:, :] != s[:-1, :]
    return b


def _rpf(cnt_r, sum_r, cnt_p, sum_p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall, precision, F with BSDS's ``0 / 0 = 0`` convention (no NaN)."""
    cnt_r, sum_r, cnt_p, sum_p = (np.asarray(x, dtype=np.float64) for x in (cnt_r, sum_r, cnt_p, sum_p))
    r = np.divide(cnt_r, sum_r, out=np.zeros_like(cnt_r), where=sum_r > 0)
    p = np.divide(cnt_p, sum_p, out=np.zeros_like(cnt_p), where=sum_p > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return r, p, f


class BoundaryPR:
    """BSDS500 boundary benchmark (ODS, OIS, AP) accumulated over images.

    See the module docstring for the counts and conventions (``0 / 0 = 0`` for P and R).

    Args:
        thresholds: number of thresholds ``n`` (BSDS: ``linspace(1/(n+1), 1 - 1/(n+1), n)``,
            0.01:0.01:0.99 for the default 99) or an explicit sequence in ``[0, 1]`` (sorted).
        max_dist: matching tolerance as a fraction of the image diagonal.
        thin: thin each thresholded map to one-pixel lines before matching (BSDS: yes).

    AP integration rule: the points of the dataset curve where something was predicted
    (``sumP > 0``; precision is undefined elsewhere) are sorted by recall (ties in decreasing
    threshold order), the curve is extended at constant precision from its lowest-recall point
    down to recall 0, and the area is taken by the trapezoidal rule up to the highest recall
    reached (no extrapolation to recall 1). A perfect detector thus has AP = 1, and AP is 0 when
    nothing is ever predicted.

    Example:
        >>> gt = np.zeros((50, 50), bool); gt[:, 20] = True
        >>> bench = BoundaryPR(thresholds=9)
        >>> bench.update(gt.astype(float), [gt])
        >>> r = bench.result()
        >>> r["ods"]["f"], r["ois"]["f"], r["ap"]
        (1.0, 1.0, 1.0)
    """

    def __init__(self, thresholds: int | Sequence[float] = 99, max_dist: float = 0.0075, thin: bool = True):
        if isinstance(thresholds, (int, np.integer)) and not isinstance(thresholds, bool):
            n = check_positive_int(thresholds, "thresholds")
            thr = np.linspace(1 / (n + 1), 1 - 1 / (n + 1), n)
        else:
            thr = np.sort(np.array(check_floats(thresholds, "thresholds", low=0, high=1), dtype=np.float64))
        self.thresholds = thr
        self.max_dist = check_float(max_dist, "max_dist", low=0)
        self.thin = check_bool(thin, "thin")
        self._counts: list[np.ndarray] = []  # per image, (4, T): cntR, sumR, cntP, sumP

    def _check_inputs(self, prob, gts) -> tuple[np.ndarray, list[np.ndarray]]:
        p = _to_numpy(prob, "prob")
        if p.ndim != 2:
            raise ValueError(f"prob: expected a 2-D (H, W) map, got shape {p.shape}")
        if not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer) or p.dtype == bool):
            raise ValueError(f"prob: expected real values, got dtype {p.dtype}")
        p = p.astype(np.float64)
        if not np.all(np.isfinite(p)) or p.min(initial=0) < 0 or p.max(initial=0) > 1:
            raise ValueError("prob: values must be finite and in [0, 1]")
        if isinstance(gts, (np.ndarray, torch.Tensor)) and gts.ndim == 3:
            gts = list(gts)
        if not isinstance(gts, (list, tuple)) or len(gts) == 0:
            raise ValueError(f"gts: expected a non-empty list of (H, W) bool maps (one per annotator), "
                             f"got {type(gts).__name__}")
        maps = [_as_boundary_map(g, f"gts[{i}]") for i, g in enumerate(gts)]
        for i, g in enumerate(maps):
            if g.shape != p.shape:
                raise ValueError(f"gts[{i}]: expected shape {p.shape} (that of prob), got {g.shape}")
        return p, maps

    def update(self, prob, gts) -> None:
        """Add one image.

        Args:
            prob: ``(H, W)`` boundary probability in ``[0, 1]`` (numpy or torch).
            gts: the annotators' ``(H, W)`` bool boundary maps: a list, or a ``(A, H, W)`` array.
        """
        p, maps = self._check_inputs(prob, gts)
        radius = self.max_dist * float(np.hypot(*p.shape))
        annotations = [_Annotation(g, radius) for g in maps]
        sum_r = sum(len(a.xy) for a in annotations)
        counts = np.zeros((4, self.thresholds.size), dtype=np.int64)
        counts[1] = sum_r
        previous = None
        for t, thr in enumerate(self.thresholds):
            pred = p >= thr
            if self.thin:
                pred = skimage_thin(pred)
            # Neighbouring thresholds often leave the map unchanged; reuse the counts then.
            if previous is not None and np.array_equal(pred, previous):
                counts[:, t] = counts[:, t - 1]
                continue
            previous = pred
            pred_xy = np.argwhere(pred)
            matched_any = np.zeros(len(pred_xy), dtype=bool)
            for annotation in annotations:
                pm, gm = annotation.match(pred_xy)
                counts[0, t] += int(gm.sum())
                matched_any |= pm
            counts[2, t] = int(matched_any.sum())
            counts[3, t] = len(pred_xy)
        self._counts.append(counts)

    def _area(self, recall: np.ndarray, precision: np.ndarray, predicted: np.ndarray) -> float:
        # Reversed so that equal recalls stay in decreasing-threshold order after the stable sort.
        r, p = recall[predicted][::-1], precision[predicted][::-1]
        if r.size == 0:
            return 0.0
        order = np.argsort(r, kind="stable")
        r = np.concatenate([[0.0], r[order]])
        p = np.concatenate([[p[order[0]]], p[order]])
        return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))

    def result(self) -> dict:
        """ODS, OIS, AP and the dataset precision-recall curve.

        Returns:
            ``{"ods": {"f", "precision", "recall", "threshold"}, "ois": {"f", "precision",
            "recall"}, "ap": float, "thresholds", "precision", "recall", "f": (T,) float64 arrays
            of the dataset curve, "num_images": int}``.
        """
        if not self._counts:
            raise RuntimeError("BoundaryPR: no image added yet (call update first)")
        counts = np.stack(self._counts)  # (N, 4, T)
        total = counts.sum(axis=0)
        r, p, f = _rpf(*total)
        best = int(np.argmax(f))
        _, _, f_img = _rpf(*counts.transpose(1, 0, 2))  # (N, T)
        best_img = np.argmax(f_img, axis=1)
        at_best = counts[np.arange(counts.shape[0]), :, best_img].sum(axis=0)  # (4,)
        r_ois, p_ois, f_ois = _rpf(*at_best)
        return {
            "ods": {"f": float(f[best]), "precision": float(p[best]), "recall": float(r[best]),
                    "threshold": float(self.thresholds[best])},
            "ois": {"f": float(f_ois), "precision": float(p_ois), "recall": float(r_ois)},
            "ap": self._area(r, p, total[3] > 0),
            "thresholds": self.thresholds.copy(),
            "precision": p,
            "recall": r,
            "f": f,
            "num_images": counts.shape[0],
        }
