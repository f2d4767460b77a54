"""Confusion matrix, IoU / mIoU / accuracy under the SemanticKITTI protocol (server and
rows-and-columns formulas), accumulation."""

import json
import math

import numpy as np
import pytest
import torch

from pixelwise.checks import NotAChoiceError
from pixelwise.metrics.segmentation import (
    FORMULAS,
    ROWS_AND_COLUMNS,
    SERVER,
    ConfusionAccumulator,
    SegmentationScores,
    confusion_matrix,
    segmentation_scores,
)

# 12 points, 4 classes, class 0 ignored. Point 8 has target 0 (must not count at all, although
# predicted 2); point 9 is labelled 1 but predicted 0: a false negative of class 1 for the server
# formula, dropped (not a false negative) for the rows-and-columns formula.
TARGET = [1, 1, 1, 2, 2, 2, 3, 3, 0, 1, 2, 3]
PRED = [1, 1, 2, 2, 2, 1, 3, 1, 2, 0, 3, 3]
CONFUSION = [
    [0, 0, 1, 0],
    [1, 2, 1, 0],
    [0, 1, 2, 1],
    [0, 1, 0, 2],
]


def test_confusion_matrix_hand_computed():
    m = confusion_matrix(torch.tensor(PRED), torch.tensor(TARGET), 4)
    assert m.dtype == torch.long
    assert m.tolist() == CONFUSION
    # numpy inputs of any integer type and any (equal) shape
    m2 = confusion_matrix(np.array(PRED, dtype=np.uint8).reshape(3, 4), np.array(TARGET, dtype=np.int32).reshape(3, 4), 4)
    assert m2.tolist() == CONFUSION


def test_scores_hand_computed():
    s = segmentation_scores(torch.tensor(CONFUSION), ignore=(0,), formula="rows_and_columns")
    assert isinstance(s, SegmentationScores)
    # after zeroing row/col 0: tp = 2,2,2; fp = 2,1,1; fn = 1,2,1
    assert math.isnan(s.iou[0])
    np.testing.assert_allclose(s.iou[1:], [0.4, 0.4, 0.5], rtol=0, atol=1e-15)
    assert s.miou == pytest.approx(1.3 / 3, abs=1e-15)
    assert s.accuracy == pytest.approx(0.6, abs=1e-15)
    assert s.present.tolist() == [True, True, True, True]
    assert s.miou_present == pytest.approx(1.3 / 3, abs=1e-15)
    assert s.iou.dtype == np.float64
    assert s.confusion.tolist() == CONFUSION
    assert s.formula == ROWS_AND_COLUMNS


def test_scores_hand_computed_server():
    s = segmentation_scores(torch.tensor(CONFUSION), ignore=(0,))
    assert s.formula == SERVER
    # after zeroing row 0 only: tp = 2,2,2; fp = 2,1,1 (column 0 is no class's fp);
    # fn = 2,2,1 (point 9, labelled 1 and predicted 0, is now a miss of class 1)
    assert math.isnan(s.iou[0])
    np.testing.assert_allclose(s.iou[1:], [1 / 3, 0.4, 0.5], rtol=0, atol=1e-15)
    assert s.miou == pytest.approx((1 / 3 + 0.4 + 0.5) / 3, abs=1e-15)
    assert s.accuracy == pytest.approx(0.6, abs=1e-15)  # 6 / (6 + 4): column 0 is not counted
    assert s.miou_present == s.miou
    assert segmentation_scores(torch.tensor(CONFUSION), formula="server").miou == s.miou


# A second hand case, [target, pred], class 0 ignored, with many labelled points predicted 0.
CONFUSION_B = [
    [7, 2, 1, 0],  # ground truth 0: dropped by both formulas
    [3, 5, 1, 1],
    [1, 2, 6, 0],
    [0, 0, 2, 4],
]


def test_formulas_differ_hand_computed():
    # tp = diag over classes 1..3 = 5, 6, 4.
    # fp = column sum over rows 1..3 - tp: col1 5+2+0-5 = 2, col2 1+6+2-6 = 3, col3 1+0+4-4 = 1 (both formulas).
    # server, fn = full row sum - tp: row1 3+5+1+1-5 = 5, row2 1+2+6+0-6 = 3, row3 0+0+2+4-4 = 2
    #   iou = 5/12, 6/12, 4/7; miou = (35 + 42 + 48) / 84 / 3 = 125/252
    # rows_and_columns, fn without column 0: row1 5+1+1-5 = 2, row2 2+6+0-6 = 2, row3 2+4-4 = 2
    #   iou = 5/9, 6/11, 4/7; miou = (385 + 378 + 396) / 693 / 3 = 1159/2079
    # accuracy (both) = sum tp / sum (tp + fp) = 15 / (15 + 6) = 5/7
    server = segmentation_scores(np.array(CONFUSION_B), ignore=(0,), formula=SERVER)
    old = segmentation_scores(np.array(CONFUSION_B), ignore=(0,), formula=ROWS_AND_COLUMNS)
    assert server.iou[1:].tolist() == [5 / 12, 6 / 12, 4 / 7]
    assert old.iou[1:].tolist() == [5 / 9, 6 / 11, 4 / 7]
    assert server.miou == pytest.approx(125 / 252, abs=1e-15)
    assert old.miou == pytest.approx(1159 / 2079, abs=1e-15)
    assert server.accuracy == pytest.approx(5 / 7, abs=1e-15)
    assert old.accuracy == pytest.approx(5 / 7, abs=1e-15)
    assert np.all(server.iou[1:] <= old.iou[1:])  # the old formula is the optimistic one
    # the same scores from the points themselves
    target = np.repeat(np.repeat(np.arange(4), 4), np.array(CONFUSION_B).reshape(-1))
    pred = np.repeat(np.tile(np.arange(4), 4), np.array(CONFUSION_B).reshape(-1))
    assert confusion_matrix(pred, target, 4).tolist() == CONFUSION_B


def test_formulas_agree_without_ignored_classes():
    rng = np.random.default_rng(2)
    m = rng.integers(0, 50, size=(5, 5))
    a = segmentation_scores(m, ignore=(), formula=SERVER)
    b = segmentation_scores(m, ignore=(), formula=ROWS_AND_COLUMNS)
    np.testing.assert_array_equal(a.iou, b.iou)
    assert a.miou == b.miou and a.accuracy == b.accuracy and a.miou_present == b.miou_present
    assert (a.formula, b.formula) == (SERVER, ROWS_AND_COLUMNS)


def test_bad_formula():
    assert FORMULAS == ("server", "rows_and_columns")
    with pytest.raises(NotAChoiceError, match="formula must be one of server, rows_and_columns; got 'optimistic'"):
        segmentation_scores(np.array(CONFUSION), formula="optimistic")
    with pytest.raises(ValueError, match="formula"):
        ConfusionAccumulator(4, formula="Server")
    with pytest.raises(ValueError, match="formula"):
        ConfusionAccumulator(4).scores(formula="rows")
    with pytest.raises(TypeError):
        segmentation_scores(np.array(CONFUSION), (0,), "server")  # keyword only


def test_accumulator_carries_formula():
    t, p = torch.tensor(TARGET), torch.tensor(PRED)
    default = ConfusionAccumulator(4)
    old = ConfusionAccumulator(4, formula=ROWS_AND_COLUMNS)
    for acc in (default, old):
        acc.update(p, t)
    assert default.formula == SERVER and old.formula == ROWS_AND_COLUMNS
    assert default.scores().iou[1:].tolist() == segmentation_scores(np.array(CONFUSION)).iou[1:].tolist()
    assert old.scores().formula == ROWS_AND_COLUMNS
    np.testing.assert_allclose(old.scores().iou[1:], [0.4, 0.4, 0.5], rtol=0, atol=1e-15)
    # scores(formula=...) overrides the stored formula for one call only
    assert default.scores(formula=ROWS_AND_COLUMNS).miou == old.scores().miou
    assert old.scores(formula=SERVER).miou == default.scores().miou
    assert default.scores().formula == SERVER


def test_absent_class_counts_in_miou_not_in_miou_present():
    m = np.zeros((5, 5), dtype=np.int64)
    m[:4, :4] = CONFUSION
    s = segmentation_scores(m, formula=ROWS_AND_COLUMNS)
    assert s.iou[4] == 0.0 and not s.present[4]
    assert s.miou == pytest.approx(1.3 / 4, abs=1e-15)
    assert s.miou_present == pytest.approx(1.3 / 3, abs=1e-15)
    s = segmentation_scores(m)  # server: iou 1/3, 0.4, 0.5, 0
    assert s.miou == pytest.approx((1 / 3 + 0.9) / 4, abs=1e-15)
    assert s.miou_present == pytest.approx((1 / 3 + 0.9) / 3, abs=1e-15)
    # an absent class that is predicted has IoU 0 with a non-zero denominator; still 0
    m[1, 4] = 3
    s = segmentation_scores(m, formula=ROWS_AND_COLUMNS)
    assert s.iou[4] == 0.0 and s.iou[1] == pytest.approx(2 / 8)
    s = segmentation_scores(m)  # class 1: tp 2, fp 2, fn 1 (col 0) + 1 + 3 = 5
    assert s.iou[4] == 0.0 and s.iou[1] == pytest.approx(2 / 9)


def test_perfect_prediction():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 6, size=500)
    t[t == 5] = 4  # class 5 never occurs
    s = segmentation_scores(confusion_matrix(t, t, 6))
    assert s.iou[1:5].tolist() == [1.0] * 4 and s.iou[5] == 0.0
    assert s.accuracy == 1.0 and s.miou_present == 1.0 and s.miou == pytest.approx(4 / 5)


def test_multiple_ignored_classes_and_to_dict():
    s = segmentation_scores(np.array(CONFUSION), ignore=[0, 3], formula=ROWS_AND_COLUMNS)
    assert math.isnan(s.iou[0]) and math.isnan(s.iou[3])
    # remaining block [[2,1],[1,2]]: iou 2/4 each, acc 4/6
    np.testing.assert_allclose(s.iou[1:3], [0.5, 0.5])
    assert s.accuracy == pytest.approx(4 / 6)
    # server: rows 1, 2 are [1,2,1,0] and [0,1,2,1]: tp 2, 2; fp 1, 1; fn 2, 2 -> iou 2/5 each
    server = segmentation_scores(np.array(CONFUSION), ignore=[0, 3])
    np.testing.assert_allclose(server.iou[1:3], [0.4, 0.4], rtol=0, atol=1e-15)
    assert server.accuracy == pytest.approx(4 / 6)
    d = s.to_dict(["unlabeled", "car", "road", "tree"])
    assert d["iou"]["unlabeled"] is None and d["iou"]["car"] == pytest.approx(0.5)
    assert d["ignore"] == ["unlabeled", "tree"]
    assert d["formula"] == "rows_and_columns" and server.to_dict()["formula"] == "server"
    json.loads(json.dumps(d, allow_nan=False))
    assert set(s.to_dict()["iou"]) == {"0", "1", "2", "3"}
    with pytest.raises(ValueError, match="class_names"):
        s.to_dict(["a", "b"])


def test_accumulator_over_chunks_equals_one_shot():
    rng = np.random.default_rng(1)
    t = torch.from_numpy(rng.integers(0, 7, size=1000))
    p = torch.where(torch.from_numpy(rng.random(1000) < 0.7), t, torch.from_numpy(rng.integers(0, 7, size=1000)))
    one = segmentation_scores(confusion_matrix(p, t, 7))
    acc = ConfusionAccumulator(7)
    for i in range(0, 1000, 137):
        acc.update(p[i:i + 137], t[i:i + 137])
    s = acc.scores()
    assert torch.equal(acc.matrix, confusion_matrix(p, t, 7))
    np.testing.assert_array_equal(s.iou, one.iou)
    assert s.miou == one.miou and s.accuracy == one.accuracy
    # merge (what an all-reduce of .matrix does across ranks)
    a, b = ConfusionAccumulator(7), ConfusionAccumulator(7)
    a.update(p[:400], t[:400])
    b.update(p[400:].numpy(), t[400:].numpy())
    assert torch.equal(a.merge(b).matrix, acc.matrix)
    a.all_reduce()  # not distributed: no-op
    assert torch.equal(a.matrix, acc.matrix)
    acc.reset()
    assert int(acc.matrix.sum()) == 0


@pytest.mark.parametrize("pred,target,n,name", [
    ([0, 4], [0, 1], 4, "pred"),
    ([0, 1], [-1, 1], 4, "target"),
    ([0, 1, 2], [0, 1], 4, "shape"),
    ([0, 1], [0, 1], 0, "num_classes"),
])
def test_confusion_matrix_errors(pred, target, n, name):
    with pytest.raises(ValueError, match=name):
        confusion_matrix(torch.tensor(pred), torch.tensor(target), n)


def test_input_type_errors():
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="target"):
        confusion_matrix(np.array([0, 1]), np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="confusion"):
        segmentation_scores(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="confusion"):
        segmentation_scores(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="ignore must be <= 2, got 3"):
        segmentation_scores(np.ones((3, 3)), ignore=(3,))
    with pytest.raises(TypeError, match="ignore must be an int"):
        segmentation_scores(np.ones((3, 3)), ignore=(True,))
    with pytest.raises(TypeError, match="num_classes must be an int"):
        ConfusionAccumulator(3.0)
    with pytest.raises(ValueError, match="ignore"):
        segmentation_scores(np.ones((2, 2)), ignore=(0, 1))
    with pytest.raises(ValueError, match="other"):
        ConfusionAccumulator(3).merge(ConfusionAccumulator(4))
