"""BSDS500-style boundary matching and ODS / OIS / AP, checked on hand-computed cases."""

import json

import numpy as np
import pytest
import torch

from pixelwise.metrics.boundaries import BoundaryPR, boundaries_from_segmentation, match_boundaries

# On a 100 x 100 image the default tolerance is 0.0075 * 141.42 = 1.06 px.
N = 100


def column(*cols, size=N):
    m = np.zeros((size, size), dtype=bool)
    m[:, list(cols)] = True
    return m


def test_boundaries_from_segmentation_hand_computed():
    seg = np.array([[0, 0, 1],
                    [0, 0, 1],
                    [2, 2, 2]])
    expected = [[0, 1, 0],
                [1, 1, 1],
                [0, 0, 0]]
    assert boundaries_from_segmentation(seg).astype(int).tolist() == expected
    assert boundaries_from_segmentation(torch.from_numpy(seg)).astype(int).tolist() == expected
    with pytest.raises(ValueError, match="seg: expected integer"):
        boundaries_from_segmentation(seg.astype(float))


def test_match_within_and_beyond_tolerance():
    gt = column(10)
    pm, gm = match_boundaries(column(11), gt)  # 1 px off, within 1.06 px
    assert pm.sum() == gm.sum() == N and np.array_equal(gm, gt)
    pm, gm = match_boundaries(column(12), gt)  # 2 px off
    assert pm.sum() == gm.sum() == 0
    pm, gm = match_boundaries(column(12), gt, max_dist=0.015)  # tolerance 2.12 px
    assert pm.sum() == N
    pm, gm = match_boundaries(column(10), gt, max_dist=0)  # exact matches only
    assert pm.sum() == N


def test_match_is_one_to_one():
    # A double line next to a one-pixel GT line: each GT pixel takes one predicted pixel only.
    pm, gm = match_boundaries(column(10, 11), column(10))
    assert pm.sum() == gm.sum() == N
    assert not np.any(pm & ~column(10, 11)) and not np.any(gm & ~column(10))


def test_match_validation():
    with pytest.raises(ValueError, match="pred and gt: shapes differ"):
        match_boundaries(np.zeros((3, 4), bool), np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="max_dist must be >= 0, got -1"):
        match_boundaries(np.zeros((3, 4), bool), np.zeros((3, 4), bool), max_dist=-1)
    with pytest.raises(ValueError, match="max_dist must be finite"):
        match_boundaries(np.zeros((3, 4), bool), np.zeros((3, 4), bool), max_dist=float("nan"))
    with pytest.raises(TypeError, match="max_dist must be a number"):
        match_boundaries(np.zeros((3, 4), bool), np.zeros((3, 4), bool), max_dist=None)
    with pytest.raises(TypeError, match="pred must be"):
        match_boundaries([[True]], np.zeros((1, 1), bool))


def test_perfect_prediction():
    gt = column(20, 60)
    bench = BoundaryPR()  # 99 thresholds, thinning on
    bench.update(gt * 0.9, [gt])
    r = bench.result()
    assert r["ods"] == {"f": 1.0, "precision": 1.0, "recall": 1.0, "threshold": pytest.approx(0.01)}
    assert r["ois"] == {"f": 1.0, "precision": 1.0, "recall": 1.0}
    assert r["ap"] == 1.0
    np.testing.assert_allclose(r["thresholds"], np.arange(1, 100) / 100)
    # from a region map (corners and junctions), without thinning
    seg = np.zeros((30, 30), dtype=np.int64)
    seg[5:20, 5:12] = 1
    seg[10:25, 12:28] = 2
    b = boundaries_from_segmentation(seg)
    bench = BoundaryPR(thresholds=5, thin=False)
    bench.update(torch.from_numpy(b.astype(np.float32)), np.stack([b]))
    r = bench.result()
    assert (r["ods"]["f"], r["ois"]["f"], r["ap"]) == (1.0, 1.0, 1.0)


def test_shift_within_and_beyond_tolerance():
    bench = BoundaryPR(thresholds=1)
    bench.update(column(11).astype(float), [column(10)])
    assert bench.result()["ods"]["f"] == 1.0
    bench = BoundaryPR(thresholds=1)
    bench.update(column(12).astype(float), [column(10)])
    r = bench.result()
    assert (r["ods"]["precision"], r["ods"]["recall"], r["ods"]["f"]) == (0.0, 0.0, 0.0)


def test_double_line_precision_half():
    bench = BoundaryPR(thresholds=1, thin=False)
    bench.update(column(10, 11).astype(float), [column(10)])
    r = bench.result()["ods"]
    assert (r["precision"], r["recall"]) == (0.5, 1.0)
    assert r["f"] == pytest.approx(2 / 3)


def test_several_annotators():
    # cntR sums over annotators; cntP counts a predicted pixel once if matched in any annotation.
    cases = [
        (column(10), [column(10), column(30)], 1.0, 0.5),  # second annotator missed entirely
        (column(10, 30), [column(10), column(30)], 1.0, 1.0),  # each line matches one annotator
        (column(10, 50), [column(10), column(30)], 0.5, 0.5),
        (column(10), [column(10), column(10)], 1.0, 1.0),  # no double counting of predictions
    ]
    for pred, gts, precision, recall in cases:
        bench = BoundaryPR(thresholds=1)
        bench.update(pred.astype(float), gts)
        r = bench.result()["ods"]
        assert (r["precision"], r["recall"]) == (precision, recall)


def two_image_bench():
    bench = BoundaryPR(thresholds=[0.7, 0.2, 0.5])  # sorted to 0.2, 0.5, 0.7
    prob1 = np.zeros((N, N))
    prob1[:, 10] = 0.8  # true boundary
    prob1[:, 50] = 0.6  # spurious line
    bench.update(prob1, [column(10)])
    prob2 = np.zeros((N, N))
    prob2[:, 10] = 0.3  # weak true boundary
    bench.update(prob2, [column(10)])
    return bench


def test_ods_ois_ap_hand_computed():
    r = two_image_bench().result()
    # dataset counts (cntR/sumR, cntP/sumP): t=0.2: 200/200, 200/300; t=0.5: 100/200, 100/200;
    # t=0.7: 100/200, 100/100
    np.testing.assert_allclose(r["thresholds"], [0.2, 0.5, 0.7])
    np.testing.assert_allclose(r["recall"], [1, 0.5, 0.5])
    np.testing.assert_allclose(r["precision"], [2 / 3, 0.5, 1])
    np.testing.assert_allclose(r["f"], [0.8, 0.5, 2 / 3])
    assert r["ods"] == pytest.approx({"f": 0.8, "precision": 2 / 3, "recall": 1.0, "threshold": 0.2})
    # image 1 is perfect at 0.7, image 2 at 0.2
    assert r["ois"] == {"f": 1.0, "precision": 1.0, "recall": 1.0}
    # by recall: (0, 1) anchor, (0.5, 1), (0.5, 0.5), (1, 2/3) -> 0.5 + 0 + 0.5 * (0.5 + 2/3) / 2
    assert r["ap"] == pytest.approx(19 / 24)
    assert r["num_images"] == 2
    json.dumps({k: v for k, v in r.items() if isinstance(v, (dict, float, int))})


def test_ods_at_least_any_single_threshold():
    rng = np.random.default_rng(0)
    probs, gts = [], []
    for _ in range(2):
        gt = column(int(rng.integers(5, 25)), int(rng.integers(26, 38)), size=40)
        prob = np.clip(gt * rng.uniform(0.3, 1.0) + rng.uniform(0, 0.6, gt.shape) * (rng.random(gt.shape) < 0.05), 0, 1)
        probs.append(prob)
        gts.append(gt)
    bench = BoundaryPR(thresholds=9)
    for prob, gt in zip(probs, gts):
        bench.update(prob, [gt])
    r = bench.result()
    for t in r["thresholds"]:
        single = BoundaryPR(thresholds=[t])
        for prob, gt in zip(probs, gts):
            single.update(prob, [gt])
        f_t = single.result()["ods"]["f"]
        assert r["ods"]["f"] >= f_t
        assert f_t == pytest.approx(r["f"][np.isclose(r["thresholds"], t)][0])
    assert r["ods"]["f"] == r["f"].max()


def test_empty_gt_and_empty_prediction_give_no_nan():
    bench = BoundaryPR(thresholds=3)
    bench.update(np.zeros((N, N)), [np.zeros((N, N), bool)])  # nothing anywhere
    r = bench.result()
    assert (r["ods"]["f"], r["ois"]["f"], r["ap"]) == (0.0, 0.0, 0.0)
    bench.update(column(10) * 1.0, [np.zeros((N, N), bool)])  # predictions, no GT: P = 0
    bench.update(np.zeros((N, N)), [column(10)])  # GT, no predictions: R = 0
    r = bench.result()
    assert not np.any(np.isnan(r["precision"])) and not np.any(np.isnan(r["recall"]))
    assert (r["ods"]["precision"], r["ods"]["recall"], r["ods"]["f"]) == (0.0, 0.0, 0.0)


def test_boundary_pr_validation():
    with pytest.raises(ValueError, match="prob: values must be finite and in"):
        BoundaryPR().update(np.full((4, 4), 1.5), [np.zeros((4, 4), bool)])
    with pytest.raises(ValueError, match="gts: expected a non-empty list"):
        BoundaryPR().update(np.zeros((4, 4)), [])
    with pytest.raises(ValueError, match=r"gts\[1\]: expected shape"):
        BoundaryPR().update(np.zeros((4, 4)), [np.zeros((4, 4), bool), np.zeros((4, 5), bool)])
    with pytest.raises(ValueError, match="thresholds must be >= 1, got 0"):
        BoundaryPR(thresholds=0)
    with pytest.raises(ValueError, match=r"thresholds\[1\] must be <= 1, got 2"):
        BoundaryPR(thresholds=[0.5, 2.0])
    with pytest.raises(ValueError, match="thresholds must hold at least one number"):
        BoundaryPR(thresholds=[])
    with pytest.raises(TypeError, match="thin must be a bool"):
        BoundaryPR(thin=1)
    with pytest.raises(RuntimeError, match="no image"):
        BoundaryPR().result()


def test_thinning_of_thresholded_map():
    # A 3-px band around a 1-px GT line: thinned to one line it matches (the thinned line is a little
    # shorter at the ends); unthinned, only one pixel in three can be matched one-to-one.
    prob = column(9, 10, 11).astype(float)
    thinned, raw = BoundaryPR(thresholds=1), BoundaryPR(thresholds=1, thin=False)
    thinned.update(prob, [column(10)])
    raw.update(prob, [column(10)])
    assert thinned.result()["ods"]["precision"] == 1.0 and thinned.result()["ods"]["recall"] >= 0.95
    assert raw.result()["ods"]["precision"] == pytest.approx(1 / 3) and raw.result()["ods"]["recall"] == 1.0
