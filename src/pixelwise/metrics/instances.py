"""Mask IoU, object-proposal recall and instance-segmentation AP^r (Kong & Fowlkes 2018 evaluation).

* :func:`mask_iou`: IoU matrix between two sets of binary masks, pixels marked ``ignore`` (e.g.
  VOC "void", label 255) counting for neither the intersection nor the union.
* :class:`ProposalRecall`: fraction of ground-truth instances covered by one of the top-``k``
  proposals of their image. ``recall50@k`` is the paper's "AR at IoU=0.5"; ``ar@k`` is the
  average recall over IoU 0.5:0.05:0.95 (Hosang et al., COCO-style discrete average). The two
  are reported under separate keys because papers use both under the name "AR".
* :class:`InstanceAP`: VOC AP^r at a mask-IoU threshold with the SDS protocol (Hariharan et
  al.): per class, detections of all images ranked by score; a detection is a true positive
  when the same-class ground truth it overlaps most has IoU >= threshold and is not matched
  yet; a detection whose best ground truth is already taken is a false positive (no fall-back
  to the second-best ground truth). AP is the area under the precision envelope (VOC 2010+).

Shared convention: ground-truth masks with no pixel outside ``ignore`` are left out (they can
never be matched and would only count as misses).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..checks import WrongTypeError, check_floats, check_int, check_positive_int

__all__ = ["IOU_THRESHOLDS", "InstanceAP", "ProposalRecall", "mask_iou", "voc_ap"]

# Rounded because np.arange accumulates error (0.7000000000000002), which would reject an IoU of
# exactly 7/10 at the 0.7 threshold.
IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)

# float32 sums of 0/1 values are exact up to 2**24; beyond that the product runs in float64.
_FLOAT32_EXACT = 2 ** 24


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise WrongTypeError(f"{name} must be a numpy array or a torch.Tensor, got {type(x).__name__}")


def _as_masks(x, name: str, ndim: int, layout: str) -> np.ndarray:
    """Bool array of ``ndim`` dims; 0/1 integer or float arrays are accepted and converted."""
    a = _to_numpy(x, name)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D {layout} array, got shape {a.shape}")
    if a.dtype == bool:
        return a
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name}: expected a bool (or 0/1) array, got dtype {a.dtype}")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name}: expected a bool (or 0/1) array, got values other than 0 and 1")
    return a.astype(bool)


def _as_vector(x, name: str, length: int, kind: str) -> np.ndarray:
    """1-D array of ``length`` entries; ``kind`` is ``"float"`` (finite) or ``"int"`` (>= 0)."""
    a = _to_numpy(x, name)
    if a.shape != (length,):
        raise ValueError(f"{name}: expected shape ({length},), got {a.shape}")
    if kind == "float":
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{name}: expected real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: values must be finite")
        return a
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer class ids, got dtype {a.dtype}")
    if a.size and a.min() < 0:
        raise ValueError(f"{name}: class ids must be >= 0, got {int(a.min())}")
    return a.astype(np.int64)


def _check_ignore(ignore, shape: tuple[int, int]) -> np.ndarray | None:
    if ignore is None:
        return None
    ign = _as_masks(ignore, "ignore", 2, "(H, W)")
    if ign.shape != shape:
        raise ValueError(f"ignore: expected shape {shape}, got {ign.shape}")
    return ign


def _pixel_rows(masks: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    flat = masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2])
    return flat if keep is None else flat[:, keep]


def mask_iou(pred, gt, ignore=None) -> np.ndarray:
    """IoU between every predicted and every ground-truth mask.

    Args:
        pred: ``(P, H, W)`` bool masks (numpy or torch; 0/1 integers accepted). ``P`` may be 0.
        gt: ``(G, H, W)`` bool masks. ``G`` may be 0.
        ignore: optional ``(H, W)`` bool map; those pixels count for neither intersection nor
            union (VOC "void").

    Returns:
        ``(P, G)`` float64 array; 0 where the union is empty.

    Example:
        >>> p = np.array([[[1, 1, 0, 0]]], bool)
        >>> g = np.array([[[0, 1, 1, 0]]], bool)
        >>> mask_iou(p, g).tolist(), mask_iou(p, g, ignore=np.array([[1, 0, 0, 0]], bool)).tolist()
        ([[0.3333333333333333]], [[0.5]])
    """
    p = _as_masks(pred, "pred", 3, "(P, H, W)")
    g = _as_masks(gt, "gt", 3, "(G, H, W)")
    if p.shape[1:] != g.shape[1:]:
        raise ValueError(f"pred and gt: image sizes differ, {p.shape[1:]} vs {g.shape[1:]}")
    ign = _check_ignore(ignore, p.shape[1:])
    keep = None if ign is None else ~ign.reshape(-1)
    pf = _pixel_rows(p, keep)
    gf = _pixel_rows(g, keep)
    dtype = np.float32 if pf.shape[1] <= _FLOAT32_EXACT else np.float64
    # The intersection of every pair is one matrix product of the flattened masks.
    inter = (pf.astype(dtype) @ gf.astype(dtype).T).astype(np.float64)
    union = np.count_nonzero(pf, axis=1)[:, None] + np.count_nonzero(gf, axis=1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _gt_nonempty(gt: np.ndarray, ign: np.ndarray | None) -> np.ndarray:
    keep = None if ign is None else ~ign.reshape(-1)
    return np.count_nonzero(_pixel_rows(gt, keep), axis=1) > 0


class ProposalRecall:
    """Recall of ground-truth instances by ranked object proposals, accumulated over images.

    For every ground-truth instance the running maximum IoU over the proposals of ranks
    ``1..max_k`` of its image is kept (``O(num_gt * max_k)`` memory); recall at ``k`` proposals
    and IoU threshold ``t`` is the fraction of all instances whose maximum over the first ``k``
    ranks is ``>= t``. Images with fewer than ``k`` proposals use all of them.

    Args:
        max_k: largest number of proposals per image that can be queried.

    Example:
        >>> rec = ProposalRecall(max_k=2)
        >>> gt = np.array([[[1, 1, 1, 1, 0]], [[0, 0, 0, 0, 1]]], bool)
        >>> props = np.array([[[1, 1, 1, 0, 0]], [[0, 0, 0, 1, 1]]], bool)
        >>> rec.update(props, None, gt)
        >>> r = rec.result(top_k=(1, 2))
        >>> r["recall50@1"], r["recall50@2"]
        (0.5, 1.0)
    """

    def __init__(self, max_k: int = 100):
        self.max_k = check_positive_int(max_k, "max_k")
        self._best: list[np.ndarray] = []
        self._num_proposals: list[int] = []

    def update(self, masks, scores, gt, ignore=None) -> None:
        """Add one image.

        Args:
            masks: ``(P, H, W)`` bool proposal masks (``P`` may be 0).
            scores: ``(P,)`` proposal scores (higher ranks first; ties keep the given order), or
                ``None`` when ``masks`` is already ranked.
            gt: ``(G, H, W)`` bool ground-truth instance masks.
            ignore: optional ``(H, W)`` bool map of pixels left out of every IoU.
        """
        m = _as_masks(masks, "masks", 3, "(P, H, W)")
        g = _as_masks(gt, "gt", 3, "(G, H, W)")
        if m.shape[1:] != g.shape[1:]:
            raise ValueError(f"masks and gt: image sizes differ, {m.shape[1:]} vs {g.shape[1:]}")
        ign = _check_ignore(ignore, m.shape[1:])
        if scores is not None:
            s = _as_vector(scores, "scores", m.shape[0], "float")
            m = m[np.argsort(-s, kind="stable")]
        self._num_proposals.append(m.shape[0])
        # Proposals beyond max_k can never be queried, so they are not scored at all.
        iou = mask_iou(m[: self.max_k], g[_gt_nonempty(g, ign)], ign).T  # (G, ranks)
        best = np.zeros((iou.shape[0], self.max_k), dtype=np.float64)
        if iou.shape[1]:
            best[:, : iou.shape[1]] = np.maximum.accumulate(iou, axis=1)
            best[:, iou.shape[1]:] = best[:, iou.shape[1] - 1: iou.shape[1]]
        self._best.append(best)

    def _table(self) -> np.ndarray:
        if not self._best:
            raise RuntimeError("ProposalRecall: no image added yet (call update first)")
        best = np.concatenate(self._best, axis=0)
        if best.shape[0] == 0:
            raise RuntimeError("ProposalRecall: the images added have no ground-truth instance")
        return best

    def recall_curve(self, k_values: Sequence[int] | None = None, thresholds=IOU_THRESHOLDS) -> dict:
        """Recall against the number of proposals, for plotting.

        Args:
            k_values: numbers of proposals (default ``1..max_k``).
            thresholds: IoU thresholds averaged into ``ar``.

        Returns:
            ``{"k": (K,) int array, "recall50": (K,) recall at IoU 0.5, "ar": (K,) recall averaged
            over ``thresholds``, "recall": (K, T) recall per threshold, "thresholds": (T,)}``.
        """
        best = self._table()
        ks = np.arange(1, self.max_k + 1) if k_values is None else np.array(
            [check_int(k, f"k_values (max_k={self.max_k})", min=1, max=self.max_k) for k in k_values], dtype=np.int64)
        thr = np.array(check_floats(thresholds, "thresholds", low=0, high=1), dtype=np.float64)
        at_k = best[:, ks - 1]  # (G, K)
        recall = (at_k[:, :, None] >= thr[None, None, :]).mean(axis=0)  # (K, T)
        return {"k": ks, "recall50": (at_k >= 0.5).mean(axis=0), "ar": recall.mean(axis=1),
                "recall": recall, "thresholds": thr}

    def result(self, top_k: Sequence[int] = (10, 60, 100)) -> dict:
        """Scores at each ``k`` of ``top_k`` (every ``k <= max_k``).

        Returns:
            ``{"recall50@k": float, "ar@k": float for each k, "num_gt": int, "num_images": int,
            "mean_proposals": float}``; ``mean_proposals`` counts the proposals as given, before
            truncation to ``max_k``.
        """
        curve = self.recall_curve(list(top_k))
        out: dict = {}
        for k, r50, ar in zip(curve["k"], curve["recall50"], curve["ar"]):
            out[f"recall50@{k}"] = float(r50)
            out[f"ar@{k}"] = float(ar)
        out["num_gt"] = int(sum(b.shape[0] for b in self._best))
        out["num_images"] = len(self._best)
        out["mean_proposals"] = float(np.mean(self._num_proposals))
        return out


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010+ "all points" interpolation).

    The curve is extended with ``(0, 0)`` and ``(1, 0)``, precision is replaced by its maximum at
    any higher recall, and the rectangles between consecutive distinct recalls are summed.

    Example:
        >>> voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
        0.8333333333333333
    """
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    step = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


class InstanceAP:
    """VOC AP^r of instance masks at one or more mask-IoU thresholds (SDS protocol).

    Matching is done per image when it is added (a ground truth belongs to one image, so this
    gives the same true/false positives as matching in the global score order): per class,
    detections by descending score (ties keep the given order); each is compared with the
    same-class ground truth of highest IoU (first one on ties); it is a true positive if that IoU
    is ``>= threshold`` and that ground truth is unmatched, otherwise a false positive. At
    :meth:`result`, the detections of a class over all images are ranked by score (stable, in the
    order added) and AP is :func:`voc_ap` of the cumulative precision/recall.

    Args:
        thresholds: mask-IoU thresholds, the first one is reported as ``map``.

    Example:
        >>> ap = InstanceAP()
        >>> gt = np.array([[[1, 1, 0, 0]], [[0, 0, 1, 1]]], bool)
        >>> ap.update(gt[[0, 0]], np.array([0.9, 0.8]), np.array([1, 1]), gt, np.array([1, 1]))
        >>> ap.result()["map"]  # the duplicate is a false positive; recall stays 1/2
        0.5
    """

    def __init__(self, thresholds: Sequence[float] = (0.5,)):
        self.thresholds = np.array(check_floats(thresholds, "thresholds", low=0, high=1, low_open=True),
                                   dtype=np.float64)
        self._npos: dict[int, int] = {}
        self._scores: dict[int, list[np.ndarray]] = {}
        self._tp: dict[int, list[np.ndarray]] = {}
        self.num_images = 0

    def _match_class(self, iou: np.ndarray) -> np.ndarray:
        """``(D, T)`` bool true positives of score-ranked detections against a ``(D, G)`` IoU."""
        tp = np.zeros((iou.shape[0], self.thresholds.size), dtype=bool)
        if iou.shape[1] == 0:
            return tp
        best = iou.argmax(axis=1)
        best_iou = iou[np.arange(iou.shape[0]), best]
        for t, thr in enumerate(self.thresholds):
            taken = np.zeros(iou.shape[1], dtype=bool)
            for d in np.flatnonzero(best_iou >= thr):
                # A detection whose best ground truth is taken is a false positive: no fall-back.
                if not taken[best[d]]:
                    taken[best[d]] = True
                    tp[d, t] = True
        return tp

    def update(self, masks, scores, classes, gt_masks, gt_classes, ignore=None) -> None:
        """Add one image.

        Args:
            masks: ``(P, H, W)`` bool detected masks (``P`` may be 0).
            scores: ``(P,)`` detection confidences.
            classes: ``(P,)`` integer class ids (>= 0).
            gt_masks: ``(G, H, W)`` bool ground-truth masks.
            gt_classes: ``(G,)`` integer class ids.
            ignore: optional ``(H, W)`` bool map of pixels left out of every IoU.
        """
        m = _as_masks(masks, "masks", 3, "(P, H, W)")
        g = _as_masks(gt_masks, "gt_masks", 3, "(G, H, W)")
        if m.shape[1:] != g.shape[1:]:
            raise ValueError(f"masks and gt_masks: image sizes differ, {m.shape[1:]} vs {g.shape[1:]}")
        s = _as_vector(scores, "scores", m.shape[0], "float")
        c = _as_vector(classes, "classes", m.shape[0], "int")
        gc = _as_vector(gt_classes, "gt_classes", g.shape[0], "int")
        ign = _check_ignore(ignore, m.shape[1:])
        valid = _gt_nonempty(g, ign)
        g, gc = g[valid], gc[valid]
        iou = mask_iou(m, g, ign)
        order = np.argsort(-s, kind="stable")
        for cls in np.union1d(c, gc).tolist():
            dets = order[c[order] == cls]
            gts = np.flatnonzero(gc == cls)
            self._npos[cls] = self._npos.get(cls, 0) + gts.size
            self._scores.setdefault(cls, []).append(s[dets])
            self._tp.setdefault(cls, []).append(self._match_class(iou[np.ix_(dets, gts)]))
        self.num_images += 1

    def _class_ap(self, cls: int) -> np.ndarray:
        scores = np.concatenate(self._scores[cls])
        tp = np.concatenate(self._tp[cls], axis=0)[np.argsort(-scores, kind="stable")]
        tp_cum = np.cumsum(tp, axis=0)
        fp_cum = np.cumsum(~tp, axis=0)
        recall = tp_cum / self._npos[cls]
        precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
        return np.array([voc_ap(recall[:, t], precision[:, t]) for t in range(self.thresholds.size)])

    def result(self, class_names: Sequence[str] | None = None) -> dict:
        """AP per class and mean AP at each threshold.

        Args:
            class_names: optional names indexed by class id (``class_names[c]`` names class ``c``);
                without them classes are named ``str(c)``.

        Returns:
            ``{"map": float, "ap_per_class": {name: float}}`` at the first threshold, the same as
            ``"map@{t:g}"`` / ``"ap_per_class@{t:g}"`` for every threshold (e.g. ``"map@0.5"``),
            ``"classes_without_gt"``: names of classes only seen in detections (left out of the
            mean), ``"num_gt"`` / ``"num_detections"``: ``{name: int}`` for every class seen, and
            ``"num_images"``.
        """
        if self.num_images == 0:
            raise RuntimeError("InstanceAP: no image added yet (call update first)")
        classes = sorted(self._npos)
        if class_names is None:
            names = {c: str(c) for c in classes}
        else:
            if classes and len(class_names) <= classes[-1]:
                raise ValueError(f"class_names: expected at least {classes[-1] + 1} names (largest class id "
                                 f"{classes[-1]}), got {len(class_names)}")
            names = {c: str(class_names[c]) for c in classes}
        scored = [c for c in classes if self._npos[c] > 0]
        if not scored:
            raise RuntimeError("InstanceAP: the images added have no ground-truth instance")
        ap = {c: self._class_ap(c) for c in scored}
        out: dict = {}
        for t, thr in enumerate(self.thresholds):
            out[f"ap_per_class@{thr:g}"] = {names[c]: float(ap[c][t]) for c in scored}
            out[f"map@{thr:g}"] = float(np.mean([ap[c][t] for c in scored]))
        first = f"{self.thresholds[0]:g}"
        out["map"] = out[f"map@{first}"]
        out["ap_per_class"] = out[f"ap_per_class@{first}"]
        out["classes_without_gt"] = [names[c] for c in classes if self._npos[c] == 0]
        out["num_gt"] = {names[c]: self._npos[c] for c in classes}
        out["num_detections"] = {names[c]: int(sum(x.size for x in self._scores[c])) for c in classes}
        out["num_images"] = self.num_images
        return out
