"""Semantic segmentation scores with the SemanticKITTI protocol (per-class IoU, mIoU, accuracy).

The confusion matrix is accumulated over all points of all scans (not averaged per scan) and
indexed ``[target, pred]`` (rows are the ground truth). Two formulas treat the ignored classes
(SemanticKITTI: 0, "unlabeled") differently; ``formula=`` picks one:

* :data:`SERVER` (``"server"``, the default): the formula of the benchmark server and of
  ``semantic-kitti-api`` since its 2019-09-06 fix ("fixed overly optimistic iou calculation").
  Only the **rows** of ignored classes are zeroed: points whose ground truth is ignored do not
  count, but a labelled point predicted as an ignored class is a false negative of its true class.
  This is the number the leaderboard reports, hence the default.
* :data:`ROWS_AND_COLUMNS` (``"rows_and_columns"``): the formula of the SqueezeSegV3 and
  lidar-bonnetal repositories, which the papers' numbers use; the server dropped it on
  2019-09-06. The rows **and** columns of ignored classes are zeroed, so a labelled point
  predicted as an ignored class counts nowhere (neither a true positive nor a false negative) --
  the optimistic formula: its IoUs are never lower than the server's.

Then, for both:

* ``tp = diag``, ``fp = column sum - tp``, ``fn = row sum - tp``,
  ``iou = tp / (tp + fp + fn)`` with 0 when the denominator is 0;
* mIoU is the mean over all non-ignored classes, *including* classes absent from the ground
  truth (their IoU is 0, or 0 as well when nothing predicted them) -- so on a small sample the
  official mIoU is pulled down by absent classes; :attr:`SegmentationScores.miou_present`
  averages only over classes that occur in the ground truth;
* accuracy ``= sum(tp) / (sum(tp) + sum(fp))`` over non-ignored classes (the server's
  ``getacc``): the fraction of correctly labelled points among points with a non-ignored label
  *and* a non-ignored prediction. Points predicted as an ignored class are not in the
  denominator, so the accuracy is the same under both formulas.

With ``ignore=()`` (e.g. the VOC-style ``segment`` task) nothing is zeroed and the two formulas
are identical.

:func:`boundary_band` selects the pixels near label boundaries (the "trimap"), to score the same
measures on edges only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from scipy.ndimage import distance_transform_edt

from ..checks import WrongTypeError, check_choice, check_int, check_positive_int

__all__ = [
    "FORMULAS",
    "ROWS_AND_COLUMNS",
    "SERVER",
    "ConfusionAccumulator",
    "SegmentationScores",
    "boundary_band",
    "confusion_matrix",
    "segmentation_scores",
]

SERVER = "server"  # zero the rows (ground truth) of ignored classes: the benchmark server since 2019-09-06
ROWS_AND_COLUMNS = "rows_and_columns"  # zero rows and columns: SqueezeSegV3 / lidar-bonnetal, the papers' numbers
FORMULAS = (SERVER, ROWS_AND_COLUMNS)


def _as_int_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{name}: expected an integer array, got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x).astype(np.int64, copy=False))
    if isinstance(x, torch.Tensor):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{name}: expected an integer tensor, got dtype {x.dtype}")
        return x.long()
    raise WrongTypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")


def confusion_matrix(pred, target, num_classes: int) -> torch.Tensor:
    """Confusion matrix ``[target, pred]`` (rows are the ground truth) of integer label arrays.

    Args:
        pred: predicted labels, any shape, torch tensor or numpy integer array.
        target: ground-truth labels of the same shape.
        num_classes: number of classes; every value must lie in ``[0, num_classes)``.

    Returns:
        ``(num_classes, num_classes)`` int64 tensor on the device of ``target`` (CPU for numpy),
        ``M[t, p]`` = number of elements with target ``t`` predicted as ``p``.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    n = check_positive_int(num_classes, "num_classes")
    p = _as_int_tensor(pred, "pred")
    t = _as_int_tensor(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target: shapes differ, {tuple(p.shape)} vs {tuple(t.shape)}")
    p = p.to(t.device).reshape(-1)
    t = t.reshape(-1)
    for name, x in (("pred", p), ("target", t)):
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= n):
            raise ValueError(f"{name}: values must lie in [0, num_classes={n}), got range "
                             f"[{int(x.min())}, {int(x.max())}]")
    return torch.bincount(t * n + p, minlength=n * n).reshape(n, n)


def _nan_to_none(x: float):
    return None if (x is None or not math.isfinite(x)) else float(x)


@dataclass
class SegmentationScores:
    """Scores of one confusion matrix under the SemanticKITTI protocol.

    Attributes:
        iou: ``(num_classes,)`` float64 IoU per class; NaN for ignored classes.
        miou: mean IoU over all non-ignored classes (absent classes count, as 0 or their IoU).
        accuracy: correct points / points with non-ignored label and prediction (the same under
            both formulas).
        present: ``(num_classes,)`` bool, the class has ground-truth points (in the matrix as
            given, before anything is zeroed).
        miou_present: mean IoU over non-ignored classes present in the ground truth (NaN if none).
        confusion: the ``(num_classes, num_classes)`` int64 matrix ``[target, pred]`` as given.
        ignore: the ignored class ids.
        formula: :data:`SERVER` or :data:`ROWS_AND_COLUMNS`, how ignored classes were dropped.
    """

    iou: np.ndarray
    miou: float
    accuracy: float
    present: np.ndarray
    miou_present: float
    confusion: np.ndarray
    ignore: tuple[int, ...] = (0,)
    formula: str = SERVER

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict:
        """A JSON-friendly dict: scalars, per-class IoU and presence by name (NaN -> ``None``)."""
        n = self.iou.shape[0]
        if class_names is None:
            names = [str(c) for c in range(n)]
        else:
            names = [str(c) for c in class_names]
            if len(names) != n:
                raise ValueError(f"class_names: expected {n} names, got {len(names)}")
            if len(set(names)) != n:
                raise ValueError("class_names: names must be unique")
        return {
            "miou": _nan_to_none(self.miou),
            "miou_present": _nan_to_none(self.miou_present),
            "accuracy": _nan_to_none(self.accuracy),
            "iou": {name: _nan_to_none(float(v)) for name, v in zip(names, self.iou)},
            "present": {name: bool(p) for name, p in zip(names, self.present)},
            "ignore": [names[c] for c in self.ignore],
            "formula": self.formula,
            "confusion": self.confusion.astype(np.int64).tolist(),
        }


def _check_ignore(ignore: Iterable[int], n: int) -> tuple[int, ...]:
    out = tuple(sorted({check_int(c, "ignore", min=0, max=n - 1) for c in ignore}))
    if len(out) == n:
        raise ValueError(f"ignore: every one of the {n} classes is ignored; nothing to score")
    return out


def segmentation_scores(confusion, ignore: Iterable[int] = (0,), *, formula: str = SERVER) -> SegmentationScores:
    """Per-class IoU, mIoU and accuracy from a ``[target, pred]`` confusion matrix.

    Implements the SemanticKITTI evaluation exactly (see the module docstring): the rows of
    ``ignore`` classes (``formula="server"``), or their rows and columns
    (``formula="rows_and_columns"``), are zeroed first; ``iou = tp / (tp + fp + fn)`` (0 when the
    denominator is 0); mIoU averages all non-ignored classes.

    Args:
        confusion: ``(C, C)`` non-negative integer matrix (torch or numpy), rows = ground truth.
        ignore: class ids left out of every score (SemanticKITTI: ``(0,)``, "unlabeled").
        formula: :data:`SERVER` (``"server"``, the benchmark server's, default) or
            :data:`ROWS_AND_COLUMNS` (``"rows_and_columns"``, the formula of the SqueezeSegV3 and
            lidar-bonnetal repositories, which the papers' numbers use; the server dropped it on
            2019-09-06). Identical when ``ignore`` is empty.

    Returns:
        :class:`SegmentationScores`.

    Example:
        >>> m = torch.tensor([[5, 1, 0], [2, 3, 1], [0, 1, 4]])
        >>> s = segmentation_scores(m, ignore=(0,))  # the 2 points of class 1 predicted 0 are misses
        >>> [round(float(x), 4) for x in s.iou[1:]], round(s.miou, 4), round(s.accuracy, 4)
        ([0.4286, 0.6667], 0.5476, 0.7778)
        >>> s = segmentation_scores(m, ignore=(0,), formula="rows_and_columns")  # they do not count
        >>> [round(float(x), 4) for x in s.iou[1:]], round(s.miou, 4), round(s.accuracy, 4)
        ([0.6, 0.6667], 0.6333, 0.7778)
    """
    formula = check_choice(formula, "formula", FORMULAS)
    if isinstance(confusion, torch.Tensor):
        conf = confusion.detach().cpu().numpy()
    else:
        conf = np.asarray(confusion)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1] or conf.shape[0] < 1:
        raise ValueError(f"confusion: expected a square (C, C) matrix, got shape {conf.shape}")
    if not (np.issubdtype(conf.dtype, np.integer) or np.issubdtype(conf.dtype, np.floating)):
        raise ValueError(f"confusion: expected a numeric matrix, got dtype {conf.dtype}")
    if not np.all(np.isfinite(conf)) or np.any(conf < 0):
        raise ValueError("confusion: entries must be finite and non-negative")
    n = conf.shape[0]
    ign = _check_ignore(ignore, n)
    include = np.ones(n, dtype=bool)
    include[list(ign)] = False

    original = conf.astype(np.float64)
    c = original.copy()
    c[list(ign), :] = 0  # points whose ground truth is ignored: both formulas
    if formula == ROWS_AND_COLUMNS:
        c[:, list(ign)] = 0  # labelled points predicted as an ignored class: only the old formula
    tp = np.diag(c).copy()
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    denom = tp + fp + fn
    iou = np.divide(tp, denom, out=np.zeros(n, dtype=np.float64), where=denom > 0)
    iou[~include] = np.nan
    miou = float(iou[include].mean())
    total = tp[include].sum() + fp[include].sum()
    accuracy = float(tp[include].sum() / total) if total > 0 else 0.0
    present = original.sum(axis=1) > 0
    sel = include & present
    miou_present = float(iou[sel].mean()) if sel.any() else float("nan")
    return SegmentationScores(iou=iou, miou=miou, accuracy=accuracy, present=present,
                              miou_present=miou_present, confusion=conf.astype(np.int64), ignore=ign,
                              formula=formula)


class ConfusionAccumulator:
    """Running ``[target, pred]`` confusion matrix over a dataset, mergeable across processes.

    Args:
        num_classes: number of classes.
        ignore: class ids left out of the scores (the matrix itself counts everything).
        formula: how :meth:`scores` drops ignored classes, :data:`SERVER` (default) or
            :data:`ROWS_AND_COLUMNS` (see :func:`segmentation_scores`).
        device: where :attr:`matrix` lives (CPU by default; use the CUDA device for NCCL).

    Attributes:
        matrix: ``(num_classes, num_classes)`` int64 tensor; sum it over ranks with
            ``torch.distributed.all_reduce(acc.matrix)`` or :meth:`all_reduce`.

    Example:
        >>> acc = ConfusionAccumulator(3)
        >>> acc.update(torch.tensor([1, 2, 2]), torch.tensor([1, 2, 1]))
        >>> acc.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
        >>> acc.scores().iou[1:].tolist()
        [0.6666666666666666, 0.5]
    """

    def __init__(self, num_classes: int, ignore: Iterable[int] = (0,), device: torch.device | str | None = None,
                 *, formula: str = SERVER):
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.ignore = _check_ignore(ignore, self.num_classes)
        self.formula = check_choice(formula, "formula", FORMULAS)
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long,
                                  device=torch.device(device) if device is not None else None)

    def update(self, pred, target) -> None:
        """Add the points of one batch (any equal shapes; torch or numpy integer labels)."""
        self.matrix += confusion_matrix(pred, target, self.num_classes).to(self.matrix.device)

    def merge(self, other: ConfusionAccumulator) -> ConfusionAccumulator:
        """Add another accumulator's counts into this one (same ``num_classes``); returns self."""
        if not isinstance(other, ConfusionAccumulator) or other.num_classes != self.num_classes:
            raise ValueError(f"other: expected a ConfusionAccumulator with num_classes={self.num_classes}")
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self, group=None) -> None:
        """Sum :attr:`matrix` over the ranks of ``torch.distributed`` (no-op when not initialised).

        Every rank must call it. With the NCCL backend the matrix must be on the rank's CUDA
        device (pass ``device=`` at construction).
        """
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM, group=group)

    def reset(self) -> None:
        self.matrix.zero_()

    def scores(self, *, formula: str | None = None) -> SegmentationScores:
        """Scores of the counts so far, with :attr:`formula` unless ``formula`` overrides it."""
        return segmentation_scores(self.matrix, ignore=self.ignore,
                                   formula=self.formula if formula is None else formula)


def _band_2d(label: np.ndarray, width: int, ignore_index: int | None) -> np.ndarray:
    """:func:`boundary_band` of one ``(H, W)`` label map."""
    valid = np.ones(label.shape, bool) if ignore_index is None else label != ignore_index
    boundary = np.zeros(label.shape, bool)
    for first, second in (((slice(None, -1), slice(None)), (slice(1, None), slice(None))),   # vertical pairs
                          ((slice(None), slice(None, -1)), (slice(None), slice(1, None)))):  # horizontal pairs
        change = (label[first] != label[second]) & valid[first] & valid[second]
        boundary[first] |= change
        boundary[second] |= change
    if width == 0 or not boundary.any():
        return boundary
    return (distance_transform_edt(~boundary) <= width) & valid


def boundary_band(label, width: int, ignore_index: int | None = 255):
    """The "trimap" band around label boundaries, where segmentation is scored near object edges.

    Accuracy or IoU restricted to a band of growing width around the ground-truth boundaries
    (Kohli et al. 2009; Kraehenbuehl & Koltun 2011; Chen et al., DeepLab) shows what a CRF or a
    pixel-adaptive refinement changes: the interiors are right either way, the edges are not.

    A *boundary pixel* is a non-ignored pixel with a 4-neighbour of a different, non-ignored
    label (both sides of a boundary are boundary pixels); a change to or from ``ignore_index``
    is not a boundary. The band holds the non-ignored pixels whose Euclidean distance (between
    pixel centres, :func:`scipy.ndimage.distance_transform_edt`) to the nearest boundary pixel
    is at most ``width``; ``width=0`` gives the boundary pixels themselves. Ignored pixels are
    never in the band.

    Note that VOC ground truth outlines every object with a ~5 px ``ignore`` band, so its two
    sides are rarely 4-neighbours and the band of a VOC label map is nearly empty.

    Args:
        label: integer labels, numpy ``(H, W)`` / ``(B, H, W)`` or torch ``(H, W)`` /
            ``(B, H, W)`` (each image of a batch on its own).
        width: band half-width in pixels (int >= 0).
        ignore_index: the label that is never a boundary nor in the band; ``None`` for none.

    Returns:
        A bool array of ``label``'s shape: numpy for numpy input, a tensor on ``label``'s
        device for a tensor (computed on the CPU either way).

    Example:
        >>> lab = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [255, 255, 1, 1]])
        >>> boundary_band(lab, 0).astype(int)  # the two sides of the 0 | 1 boundary; 255 is no side
        array([[0, 0, 1, 1],
               [0, 0, 1, 1],
               [0, 0, 1, 0]])
        >>> boundary_band(lab, 1).astype(int)
        array([[0, 1, 1, 1],
               [0, 1, 1, 1],
               [0, 0, 1, 1]])
    """
    width = check_int(width, "width", min=0)
    if ignore_index is not None:
        ignore_index = check_int(ignore_index, "ignore_index")
    tensor = isinstance(label, torch.Tensor)
    arr = _as_int_tensor(label, "label").detach().cpu().numpy()
    if arr.ndim not in (2, 3):
        raise ValueError(f"label: expected an (H, W) or (B, H, W) array, got shape {tuple(arr.shape)}")
    band = np.stack([_band_2d(a, width, ignore_index) for a in arr.reshape((-1,) + arr.shape[-2:])])
    band = band.reshape(arr.shape)
    return torch.from_numpy(band).to(label.device) if tensor else band
