"""Mask IoU, proposal recall (recall@0.5 and AR) and VOC AP^r, checked on hand-computed cases."""

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from pixelwise.metrics.instances import IOU_THRESHOLDS, InstanceAP, ProposalRecall, mask_iou, voc_ap


def strips(width, *spans):
    """(len(spans), 1, width) bool masks; span (a, b) covers columns a..b-1 (IoUs are exact fractions)."""
    m = np.zeros((len(spans), 1, width), dtype=bool)
    for i, (a, b) in enumerate(spans):
        m[i, 0, a:b] = True
    return m


def test_iou_thresholds_are_exact_decimals():
    assert IOU_THRESHOLDS.tolist() == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert 7 / 10 >= IOU_THRESHOLDS[4]  # np.arange alone gives 0.7000000000000002


def test_mask_iou_hand_computed_with_ignore():
    pred = np.array([[[1, 1, 0], [0, 0, 0]],
                     [[0, 0, 1], [1, 1, 1]]], dtype=bool)
    gt = np.array([[[1, 0, 0], [1, 0, 0]]], dtype=bool)
    # pred0: inter 1, union 3; pred1: inter 1 (pixel (1,0)), union 5
    np.testing.assert_allclose(mask_iou(pred, gt), [[1 / 3], [1 / 5]])
    ignore = np.array([[0, 0, 0], [1, 0, 0]], dtype=bool)
    # pixel (1,0) ignored: pred0 inter 1, union 2; pred1 inter 0, union 4
    np.testing.assert_allclose(mask_iou(pred, gt, ignore), [[1 / 2], [0.0]])
    # torch inputs and 0/1 integers are accepted
    out = mask_iou(torch.from_numpy(pred), torch.from_numpy(gt.astype(np.uint8)), torch.from_numpy(ignore))
    assert out.dtype == np.float64 and out.shape == (2, 1)
    np.testing.assert_allclose(out, [[0.5], [0.0]])


def test_mask_iou_empty_sets_and_empty_union():
    gt = strips(6, (0, 3))
    assert mask_iou(np.zeros((0, 1, 6), bool), gt).shape == (0, 1)
    assert mask_iou(gt, np.zeros((0, 1, 6), bool)).shape == (1, 0)
    assert mask_iou(np.zeros((1, 1, 6), bool), np.zeros((1, 1, 6), bool)).tolist() == [[0.0]]


def test_mask_iou_validation():
    with pytest.raises(ValueError, match="pred and gt"):
        mask_iou(np.zeros((1, 2, 3), bool), np.zeros((1, 3, 2), bool))
    with pytest.raises(ValueError, match="pred: expected a 3-D"):
        mask_iou(np.zeros((2, 3), bool), np.zeros((1, 2, 3), bool))
    with pytest.raises(ValueError, match="gt: expected a bool"):
        mask_iou(np.zeros((1, 2, 3), bool), np.full((1, 2, 3), 2))
    with pytest.raises(TypeError, match="pred must be"):
        mask_iou([[[True]]], np.zeros((1, 1, 1), bool))
    with pytest.raises(ValueError, match="ignore: expected shape"):
        mask_iou(np.zeros((1, 2, 3), bool), np.zeros((1, 2, 3), bool), np.zeros((3, 2), bool))


def two_image_recall():
    rec = ProposalRecall(max_k=3)
    # Image 1: GT A = cols 0-9, B = cols 10-19. Ranked proposals: cols 0-5 (IoU A 0.6),
    # cols 10-17 (IoU B 0.8), cols 0-9 (IoU A 1.0); given out of order with scores.
    gt1 = strips(20, (0, 10), (10, 20))
    props1 = strips(20, (0, 10), (0, 6), (10, 18))
    rec.update(props1, np.array([0.7, 0.9, 0.8]), gt1)
    # Image 2: GT C = cols 0-9. Two proposals, already ranked: IoU 0.3 then 0.7.
    rec.update(torch.from_numpy(strips(10, (0, 3), (0, 7))), None, torch.from_numpy(strips(10, (0, 10))))
    return rec


def test_proposal_recall_hand_computed():
    # best IoU after k ranks: A 0.6 / 0.6 / 1.0, B 0 / 0.8 / 0.8, C 0.3 / 0.7 / 0.7 (only 2 proposals)
    r = two_image_recall().result(top_k=(1, 2, 3))
    assert r["recall50@1"] == pytest.approx(1 / 3)
    assert r["recall50@2"] == 1.0 and r["recall50@3"] == 1.0
    # thresholds reached (of 10): @1 A 3 -> 3/30; @2 A 3, B 7, C 5 -> 15/30; @3 A 10, B 7, C 5 -> 22/30
    assert r["ar@1"] == pytest.approx(3 / 30)
    assert r["ar@2"] == pytest.approx(15 / 30)
    assert r["ar@3"] == pytest.approx(22 / 30)
    assert r["num_gt"] == 3 and r["num_images"] == 2 and r["mean_proposals"] == 2.5
    json.dumps(r)


def test_proposal_recall_curve_and_k_limits():
    rec = two_image_recall()
    curve = rec.recall_curve()
    assert curve["k"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(curve["recall50"], [1 / 3, 1, 1])
    np.testing.assert_allclose(curve["ar"], [3 / 30, 15 / 30, 22 / 30])
    assert curve["recall"].shape == (3, 10)
    np.testing.assert_allclose(rec.recall_curve([2], thresholds=[0.75])["ar"], [1 / 3])  # only B (0.8)
    with pytest.raises(ValueError, match="max_k=3"):
        rec.result(top_k=(10,))


def test_proposal_recall_truncation_empty_gt_and_validation():
    rec = ProposalRecall(max_k=1)
    ignore = np.array([[True] + [False] * 9])
    # Ranked: cols 8-9 (IoU 2/9 after ignoring col 0), then the exact mask, which max_k=1 cuts off.
    # GT 2 lies entirely in the ignore region and is left out.
    rec.update(strips(10, (0, 10), (8, 10)), np.array([0.1, 0.9]), strips(10, (0, 10), (0, 1)), ignore=ignore)
    r = rec.result(top_k=(1,))
    assert r["num_gt"] == 1 and r["recall50@1"] == 0.0 and r["ar@1"] == 0.0 and r["mean_proposals"] == 2.0
    rec.update(strips(10, (0, 4)), None, strips(10, (0, 4)))
    assert rec.result(top_k=(1,))["recall50@1"] == 0.5
    rec.update(np.zeros((0, 1, 10), bool), None, strips(10, (0, 4)))  # no proposals: a miss
    assert rec.result(top_k=(1,))["recall50@1"] == pytest.approx(1 / 3)
    with pytest.raises(RuntimeError, match="no image"):
        ProposalRecall().result()
    with pytest.raises(ValueError, match="scores: expected shape"):
        rec.update(strips(10, (0, 4)), np.array([0.1, 0.2]), strips(10, (0, 4)))
    with pytest.raises(ValueError, match="max_k must be >= 1"):
        ProposalRecall(max_k=0)
    with pytest.raises(TypeError, match="max_k must be an int"):
        ProposalRecall(max_k=2.0)


def test_voc_ap_envelope():
    # precision envelope over recall steps 1/3: [1, 3/5, 3/5]
    rec = np.array([1, 1, 1, 2, 3]) / 3
    prec = np.array([1, 1 / 2, 1 / 3, 1 / 2, 3 / 5])
    assert voc_ap(rec, prec) == pytest.approx(float(Fraction(1, 3) + Fraction(2, 5)))
    assert voc_ap(np.array([]), np.array([])) == 0.0


def hand_instance_ap(thresholds=(0.5,)):
    ap = InstanceAP(thresholds=thresholds)
    # Image 1: cat GTs A (cols 0-9), B (cols 10-19).
    gt1 = strips(20, (0, 10), (10, 20))
    dets1 = strips(20, (0, 10), (0, 8), (10, 18), (0, 20))
    # d1 .95 = A (IoU 1); d2 .9 IoU 0.8 with A, a duplicate; d4 .7 IoU 0.8 with B;
    # class 3 detection .99 (no class-3 ground truth anywhere).
    ap.update(dets1, np.array([0.95, 0.9, 0.7, 0.99]), np.array([1, 1, 1, 3]), gt1, np.array([1, 1]))
    # Image 2: cat C (cols 0-9), dog E (cols 10-19). d3 cat .8 IoU 0.3 with C; d5 cat .6 IoU 0.6
    # with C; d6 dog .5 = E.
    gt2 = strips(20, (0, 10), (10, 20))
    dets2 = strips(20, (0, 3), (0, 6), (10, 20))
    ap.update(torch.from_numpy(dets2), torch.tensor([0.8, 0.6, 0.5]), torch.tensor([1, 1, 2]),
              gt2, np.array([1, 2]))
    return ap


def test_instance_ap_hand_computed():
    r = hand_instance_ap().result(class_names=["bg", "cat", "dog", "cow"])
    # cat ranking: d1 TP, d2 FP (duplicate of A), d3 FP, d4 TP, d5 TP; 3 GTs
    # recall 1/3,1/3,1/3,2/3,1; precision 1,1/2,1/3,1/2,3/5; envelope 1,3/5,3/5,3/5,3/5
    cat = float(Fraction(1, 3) * 1 + Fraction(1, 3) * Fraction(3, 5) + Fraction(1, 3) * Fraction(3, 5))
    assert cat == pytest.approx(11 / 15)
    assert r["ap_per_class"] == pytest.approx({"cat": 11 / 15, "dog": 1.0})
    assert r["map"] == pytest.approx(13 / 15) and r["map@0.5"] == r["map"]
    assert r["classes_without_gt"] == ["cow"]
    assert r["num_gt"] == {"cat": 3, "dog": 1, "cow": 0}
    assert r["num_detections"] == {"cat": 5, "dog": 1, "cow": 1}
    assert r["num_images"] == 2
    json.dumps(r)
    # without names classes are keyed by their id as a string
    assert set(hand_instance_ap().result()["ap_per_class"]) == {"1", "2"}


def test_instance_ap_several_thresholds():
    r = hand_instance_ap(thresholds=(0.5, 0.75)).result()
    # at 0.75 d5 (0.6) becomes a FP: recall 1/3,1/3,1/3,2/3,2/3; precision 1,1/2,1/3,1/2,2/5
    # envelope 1,1/2,1/2,1/2,2/5 -> AP = 1/3 + 1/6 = 1/2
    assert r["ap_per_class@0.75"] == pytest.approx({"1": 0.5, "2": 1.0})
    assert r["map@0.75"] == pytest.approx(0.75)
    assert r["map"] == r["map@0.5"] == pytest.approx(13 / 15)


def test_instance_ap_no_fallback_to_second_best_gt():
    ap = InstanceAP(thresholds=(0.3,))
    gt = strips(10, (0, 6), (6, 10))
    # d1 = A exactly; d2 covers A and B: IoU 0.6 with A (taken), 0.4 with B (free, above 0.3).
    # SDS/VOC: d2 is a false positive, B stays unmatched -> recall 1/2, precision 1 then 1/2.
    ap.update(strips(10, (0, 6), (0, 10)), np.array([0.9, 0.8]), np.array([0, 0]), gt, np.array([0, 0]))
    assert ap.result()["map"] == pytest.approx(0.5)


def test_instance_ap_class_without_detections_and_validation():
    ap = InstanceAP()
    ap.update(np.zeros((0, 1, 4), bool), np.zeros(0), np.zeros(0, np.int64), strips(4, (0, 2)), np.array([5]))
    r = ap.result()
    assert r["ap_per_class"] == {"5": 0.0} and r["num_detections"] == {"5": 0}
    with pytest.raises(ValueError, match="class_names: expected at least 6"):
        ap.result(class_names=["a", "b"])
    with pytest.raises(ValueError, match="classes: expected integer"):
        ap.update(strips(4, (0, 2)), np.array([1.0]), np.array([0.5]), strips(4, (0, 2)), np.array([0]))
    with pytest.raises(ValueError, match="gt_classes: expected shape"):
        ap.update(strips(4, (0, 2)), np.array([1.0]), np.array([0]), strips(4, (0, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="thresholds"):
        InstanceAP(thresholds=())
    with pytest.raises(ValueError, match=r"thresholds\[0\] must be > 0, got 0"):
        InstanceAP(thresholds=(0.0, 0.5))
    with pytest.raises(RuntimeError, match="no image"):
        InstanceAP().result()
