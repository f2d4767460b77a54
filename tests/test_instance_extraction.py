"""Instance proposals from pixel-embedding maps (pixelwise.grouping.extract)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelwise.grouping import (
    FEATURE_NAMES,
    ExtractionConfig,
    Proposals,
    ProposalScorer,
    best_packing,
    extract_instances,
    proposal_features,
)
from pixelwise.grouping.extract import _blur, _upsampled_norm
from pixelwise.ops.mean_shift import recurrent_mean_shift

SCALE = 8  # the network's output stride: embeddings at 1/8, proposals at full resolution


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two shared cores: one thread per test process avoids contention stalls.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_scene(instances: int, dim: int, *, noise: float, seed: int, size: int = 64, min_side: int = 8):
    """Background (label 0) plus ``instances`` non-touching rectangles on a ``size x size`` map; each
    label gets one unit direction (orthonormal when ``dim`` allows, else a best packing), every pixel
    its label's direction plus Gaussian noise. Returns the ``(D, size, size)`` embedding and the
    label map at 1/8 and at full resolution."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int64)
    for k in range(1, instances + 1):
        for _ in range(10000):
            h, w = rng.integers(min_side, 2 * min_side + 2, size=2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            if (labels[max(y - 1, 0):y + h + 1, max(x - 1, 0):x + w + 1] == 0).all():
                labels[y:y + h, x:x + w] = k
                break
        else:
            raise RuntimeError("scene too crowded")
    if dim > instances:
        directions = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:, :instances + 1].T
    else:
        directions = best_packing(dim, instances + 1).points
    emb = directions[labels] + noise * rng.normal(size=(size, size, dim)) / np.sqrt(dim)
    emb = torch.tensor(emb, dtype=torch.float32).permute(2, 0, 1).contiguous()
    return emb, labels, np.kron(labels, np.ones((SCALE, SCALE), np.int64))


def best_ious(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For every label of ``truth``, the best IoU of any mask with it."""
    out = []
    for k in range(truth.max() + 1):
        gt = truth == k
        out.append(((masks & gt).sum((1, 2)) / (masks | gt).sum((1, 2))).max())
    return np.array(out)


def pairwise_iou(masks: np.ndarray) -> np.ndarray:
    m = masks.reshape(len(masks), -1).astype(np.float64)
    inter = m @ m.T
    area = m.sum(1)
    return inter / (area[:, None] + area[None, :] - inter)


@pytest.fixture(scope="module")
def scene64():
    return make_scene(7, 64, noise=0.4, seed=0)


@pytest.fixture(scope="module")
def proposals64(scene64):
    emb, _, full = scene64
    return extract_instances(emb, full.shape)


# ----------------------------------------------------------------------------- recovery


def test_recovers_every_instance_in_64_dims(scene64, proposals64):
    _, _, full = scene64
    p = proposals64
    assert isinstance(p, Proposals) and p.masks.shape[1:] == full.shape and p.masks.dtype == bool
    assert (best_ious(p.masks, full) > 0.9).all()
    # No semantic map: nothing is background, the 8 labels come back as 8 proposals.
    assert len(p) == 8 and (p.classes == -1).all() and (p.class_confidence == 0).all()
    assert np.all(np.diff(p.scores) <= 0)
    assert p.features.shape == (len(p), len(FEATURE_NAMES)) and np.isfinite(p.features).all()
    assert p.centres.shape == (len(p), 64) and np.allclose(np.linalg.norm(p.centres, axis=1), 1, atol=1e-5)


def test_recovers_every_instance_in_3_dims():
    # Background + 4 instances on the octahedron's 5 of 6 vertices: cosine 0 between labels.
    emb, _, full = make_scene(4, 3, noise=0.15, seed=1, min_side=10)
    p = extract_instances(emb, full.shape)
    assert (best_ious(p.masks, full) > 0.9).all()


def test_every_pixel_is_assigned(scene64, proposals64):
    _, _, full = scene64
    labels = proposals64.labels
    assert labels.shape == full.shape and labels.dtype == np.int32
    ids = np.unique(labels)
    assert ids[0] == 1 and np.array_equal(ids, np.arange(1, len(ids) + 1))  # segment index + 1, no gaps
    # The label map is the primary bandwidth's partition and matches the ground truth.
    assert (best_ious(np.stack([labels == i for i in ids]), full) > 0.9).all()
    primary = proposals64.masks[proposals64.kappa_of == ExtractionConfig().kappas[0]]
    for mask in primary:
        assert len(np.unique(labels[mask])) == 1


def test_no_duplicates_above_dedup_iou():
    emb, _, full = make_scene(6, 16, noise=0.8, seed=2)
    cfg = ExtractionConfig(dedup_iou=0.8)
    p = extract_instances(emb, full.shape, cfg)
    iou = pairwise_iou(p.masks)
    np.fill_diagonal(iou, 0)
    assert iou.max() < cfg.dedup_iou
    stability = p.features[:, FEATURE_NAMES.index("stability")]
    assert ((stability >= 1) & (stability <= len(cfg.kappas))).all()


def test_pooling_bandwidths_gives_at_least_as_many_proposals():
    # A noisy embedding: sharper kernels split where the primary one does not.
    emb, _, full = make_scene(5, 8, noise=1.2, seed=3)
    single = extract_instances(emb, full.shape, ExtractionConfig(kappas=(6.0,)))
    pooled = extract_instances(emb, full.shape, ExtractionConfig(kappas=(6.0, 12.0, 24.0)))
    assert len(pooled) >= len(single)
    assert set(pooled.kappa_of) <= {6.0, 12.0, 24.0}
    # The label map comes from the primary bandwidth either way.
    assert np.array_equal(single.labels, pooled.labels)


def test_small_instance_outside_the_sample_is_found():
    emb, labels, _ = make_scene(2, 32, noise=0.3, seed=4)
    cfg = ExtractionConfig(max_pixels=256)
    # Put a 4 x 4 instance where none of the 256 sampled pixels lies (the first sample is a
    # randperm under cfg.seed); the round on unexplained pixels must seed it.
    sampled = np.zeros(labels.size, bool)
    sampled[torch.randperm(labels.size, generator=torch.Generator().manual_seed(cfg.seed))[:cfg.max_pixels]] = True
    sampled = sampled.reshape(labels.shape)
    y, x = next((y, x) for y in range(60) for x in range(60)
                if not sampled[y:y + 4, x:x + 4].any() and (labels[y:y + 4, x:x + 4] == 0).all())
    direction = F.normalize(torch.randn(32, generator=torch.Generator().manual_seed(9)), dim=0)
    emb[:, y:y + 4, x:x + 4] = direction[:, None, None]
    labels[y:y + 4, x:x + 4] = 3
    full = np.kron(labels, np.ones((SCALE, SCALE), np.int64))
    p = extract_instances(emb, full.shape, cfg)
    assert (best_ious(p.masks, full) > 0.9).all()


def test_instances_blurred_into_the_background_are_recovered(scene64):
    emb, _, full = scene64
    # At kappa 6, ten GBMS iterations pull every instance (4% of the pixels or less each) into
    # the background (74%): one state is left.
    states, _, _ = _blur(F.normalize(emb, dim=0).flatten(1)[:, ::4], 6.0, 10)
    assert states.shape[1] == 1
    # Their pixels have cosine ~0 to that one centre, so the round on unexplained pixels seeds them.
    p = extract_instances(emb, full.shape, ExtractionConfig(kappas=(6.0,)))
    assert len(p) == 8 and (best_ious(p.masks, full) > 0.9).all()


def test_deterministic(scene64, proposals64):
    emb, _, full = scene64
    again = extract_instances(emb, full.shape)
    assert np.array_equal(again.labels, proposals64.labels)
    assert np.array_equal(again.masks, proposals64.masks) and np.array_equal(again.scores, proposals64.scores)


def test_degenerate_embeddings_give_one_segment():
    # All-zero (e.g. a dead network) and single-pixel maps: no hang, every pixel labelled.
    p = extract_instances(torch.zeros(8, 16, 16), (32, 32))
    assert len(p) == 1 and (p.labels == 1).all() and p.masks.all()
    p = extract_instances(torch.randn(4, 1, 1), (5, 7))
    assert len(p) == 1 and (p.labels == 1).all()


def test_native_resolution_and_min_size(scene64):
    emb, labels, _ = scene64
    p = extract_instances(emb)
    assert p.labels.shape == labels.shape and (best_ious(p.masks, labels) > 0.9).all()
    # A min_size above every instance leaves only the background.
    big = extract_instances(emb, cfg=ExtractionConfig(min_size=0.2))
    assert len(big) >= 1 and (big.masks.mean((1, 2)) >= 0.2).all()


# ----------------------------------------------------------------------------- semantic labels


def test_semantic_majority_vote_and_background(scene64):
    emb, _, full = scene64
    classes_of = np.array([0, 3, 1, 2, 3, 1, 2, 5])  # label -> class; label 0 is background
    semantic = classes_of[full]
    rng = np.random.default_rng(0)
    flip = rng.random(full.shape) < 0.1
    semantic = np.where(flip, rng.integers(0, 6, size=full.shape), semantic)  # 10% label noise

    p = extract_instances(emb, full.shape, semantic=semantic)
    assert len(p) == 7 and (p.classes != 0).all()
    for mask, cls, conf in zip(p.masks, p.classes, p.class_confidence):
        truth = np.bincount(full[mask]).argmax()
        assert cls == classes_of[truth]
        assert 0.85 < conf <= 1.0
    agreement = p.features[:, FEATURE_NAMES.index("semantic_agreement")]
    assert np.allclose(agreement, p.class_confidence)

    kept = extract_instances(emb, full.shape, semantic=semantic, drop_background=False)
    assert len(kept) == 8 and (kept.classes == 0).sum() == 1
    assert kept.features[kept.classes == 0, FEATURE_NAMES.index("is_background")] == 1
    assert np.array_equal(kept.labels, p.labels)  # background stays in the label map


# ----------------------------------------------------------------------------- features and scoring


def test_proposal_features_match_extraction(scene64, proposals64):
    emb, _, full = scene64
    p = proposals64
    fullres = F.interpolate(F.normalize(emb, dim=0)[None], size=full.shape, mode="bilinear",
                            align_corners=False)[0]
    for i in range(3):  # the best three: each call works on the full 512 x 512 x 64 map
        f = proposal_features(p.masks[i], fullres, torch.from_numpy(p.centres[i]),
                              stability=int(p.features[i, -1]))
        for name in ("log_size", "connectedness", "cohesion", "semantic_agreement", "is_background", "stability"):
            j = FEATURE_NAMES.index(name)
            assert f[j] == pytest.approx(p.features[i, j], abs=1e-4), name
        # Separation against every other proposal's centre is at least that against the best rival.
        others = torch.from_numpy(np.delete(p.centres, i, axis=0))
        g = proposal_features(p.masks[i], fullres, torch.from_numpy(p.centres[i]), other_centres=others)
        assert 0 < g[FEATURE_NAMES.index("separation")] <= f[FEATURE_NAMES.index("separation")] + 1e-6


def test_proposal_features_by_hand():
    emb = torch.zeros(2, 4, 6)
    emb[0] = 1.0
    emb[1, :, 3:] = 1.0  # right half at 45 degrees
    mask = np.zeros((4, 6), bool)
    mask[:, 0] = mask[:, 2] = True  # two separate columns
    semantic = np.zeros((4, 6), np.int64)
    semantic[:3, 0] = 4
    f = dict(zip(FEATURE_NAMES, proposal_features(mask, emb, torch.tensor([1.0, 0.0]), semantic)))
    assert f["log_size"] == pytest.approx(np.log(8 / 24))
    assert f["connectedness"] == pytest.approx(0.5)
    assert f["cohesion"] == pytest.approx(1.0)
    assert f["separation"] == pytest.approx(2.0)  # nothing competes: the rival counts as -1
    assert f["semantic_agreement"] == pytest.approx(5 / 8) and f["is_background"] == 1
    g = dict(zip(FEATURE_NAMES, proposal_features(mask, emb, torch.tensor([1.0, 0.0]),
                                                  other_centres=torch.tensor([[0.0, 1.0]]))))
    assert g["separation"] == pytest.approx(1.0) and g["semantic_agreement"] == 0 and g["is_background"] == 0


def test_scorer_fit_recovers_a_linear_relation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURE_NAMES)))
    w = rng.normal(size=len(FEATURE_NAMES))
    y = x @ w + 0.3 + 0.01 * rng.normal(size=400)
    scorer = ProposalScorer(ridge=0.0).fit(x, y)
    assert scorer.fitted
    assert np.allclose(scorer.weights, w, atol=0.01) and scorer.bias == pytest.approx(0.3, abs=0.01)
    assert np.allclose(scorer.score(x), y, atol=0.05)
    # The ridge penalty shrinks the weights.
    shrunk = ProposalScorer(ridge=10.0).fit(x, y)
    assert np.linalg.norm(shrunk.weights) < np.linalg.norm(scorer.weights)


def test_scorer_round_trip_through_json():
    rng = np.random.default_rng(1)
    x = rng.random((50, len(FEATURE_NAMES)))
    fitted = ProposalScorer().fit(x, rng.random(50))
    for scorer in (fitted, ProposalScorer()):
        back = ProposalScorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
        assert back.fitted == scorer.fitted
        assert np.array_equal(back.score(x), scorer.score(x))


def test_default_scorer_prefers_tight_connected_large_stable_masks():
    base = np.array([np.log(0.05), 1.0, 0.95, 0.9, 0.0, 0.0, 1.0])
    worse = []
    for name, value in (("connectedness", 0.5), ("cohesion", 0.5), ("log_size", np.log(0.001))):
        f = base.copy()
        f[FEATURE_NAMES.index(name)] = value
        worse.append(f)
    better = base.copy()
    better[FEATURE_NAMES.index("stability")] = 3
    scores = ProposalScorer().score(np.stack([base, better, *worse]))
    assert scores[1] > scores[0] > scores[2:].max()


def test_fitted_scorer_is_used_by_extraction(scene64):
    emb, _, full = scene64
    weights = np.zeros(len(FEATURE_NAMES))
    weights[FEATURE_NAMES.index("log_size")] = -1.0  # smallest first
    p = extract_instances(emb, full.shape, scorer=ProposalScorer(weights))
    sizes = p.masks.sum((1, 2))
    assert np.all(np.diff(sizes) >= 0)
    assert np.allclose(p.scores, -p.features[:, 0])


# ----------------------------------------------------------------------------- internals


def test_weighted_blur_matches_recurrent_mean_shift():
    x = F.normalize(torch.randn(8, 300, generator=torch.Generator().manual_seed(0)), dim=0)
    x[:, 200:] = x[:, :100]  # exact duplicates are merged from the first iteration
    for kappa in (6.0, 24.0):
        z, weight, state_of = _blur(x, kappa, 5)
        assert weight.sum() == 300 and z.shape[1] == len(weight) <= 200
        plain = recurrent_mean_shift(x[None], kappa, iterations=5)[-1][0]
        # Equal up to the merging tolerance (states within ~1e-3 radians are one).
        assert torch.allclose(z[:, state_of], plain, atol=2e-3)


def test_upsampled_norm_matches_interpolation():
    emb = F.normalize(torch.randn(16, 9, 7, generator=torch.Generator().manual_seed(1)), dim=0)
    emb[:, 0, 0] = 0  # a zero vector (its normalised form) stays exact
    for size in ((72, 56), (9, 7), (20, 31), (5, 4)):
        ref = F.interpolate(emb[None], size=size, mode="bilinear", align_corners=False)[0].norm(dim=0)
        assert torch.allclose(_upsampled_norm(emb, size), ref, atol=1e-5)


# ----------------------------------------------------------------------------- validation


def test_bad_inputs():
    emb = torch.randn(4, 8, 8)
    bad = emb.clone()
    bad[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="embedding"):
        extract_instances(bad)
    with pytest.raises(ValueError, match="embedding"):
        extract_instances(emb[0])
    with pytest.raises(TypeError, match="embedding"):
        extract_instances(torch.ones(4, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="out_size"):
        extract_instances(emb, (0, 16))
    with pytest.raises(TypeError, match="out_size"):
        extract_instances(emb, (16.0, 16))
    with pytest.raises(ValueError, match="semantic"):
        extract_instances(emb, (16, 16), semantic=np.zeros((8, 8), np.int64))
    with pytest.raises(TypeError, match="semantic"):
        extract_instances(emb, (16, 16), semantic=np.zeros((16, 16)))
    with pytest.raises(ValueError, match="semantic"):
        extract_instances(emb, (16, 16), semantic=-np.ones((16, 16), np.int64))
    with pytest.raises(TypeError, match="scorer"):
        extract_instances(emb, scorer="default")
    with pytest.raises(TypeError, match="cfg"):
        extract_instances(emb, cfg={"kappas": (6.0,)})


@pytest.mark.parametrize("kwargs, word", [
    ({"kappas": ()}, "kappas"),
    ({"kappas": (6.0, -1.0)}, "kappas"),
    ({"iterations": -1}, "iterations"),
    ({"max_pixels": 1}, "max_pixels"),
    ({"max_segments": 0}, "max_segments"),
    ({"threshold": 1.0}, "threshold"),
    ({"min_size": 1.0}, "min_size"),
    ({"dedup_iou": 0.0}, "dedup_iou"),
    ({"seed": -1}, "seed"),
])
def test_bad_config(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ExtractionConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"kappas": "6"}, "kappas must be a sequence of numbers"),
    ({"kappas": (6.0, None)}, r"kappas\[1\] must be a number"),
    ({"iterations": 2.0}, "iterations must be an int"),
    ({"max_pixels": True}, "max_pixels must be an int"),
    ({"threshold": "0.5"}, "threshold must be a number"),
    ({"min_size": None}, "min_size must be a number"),
])
def test_bad_config_types(kwargs, message):
    with pytest.raises(TypeError, match=message):
        ExtractionConfig(**kwargs)


def test_config_accepts_a_list_of_kappas():
    assert ExtractionConfig(kappas=[6, 12]).kappas == (6.0, 12.0)


def test_bad_features_and_scorer_state():
    with pytest.raises(ValueError, match="features"):
        ProposalScorer().score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="ious"):
        ProposalScorer().fit(np.zeros((3, len(FEATURE_NAMES))), np.zeros(4))
    with pytest.raises(ValueError, match="weights"):
        ProposalScorer(weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="bias must be finite"):
        ProposalScorer(bias=float("nan"))
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        ProposalScorer(ridge=-1.0)
    with pytest.raises(TypeError, match="ridge must be a number"):
        ProposalScorer(ridge="0")
    with pytest.raises(ValueError, match="feature_names"):
        ProposalScorer.from_dict({"feature_names": ["size"], "weights": None})
    mask = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="mask"):
        proposal_features(mask, torch.randn(2, 4, 4), torch.randn(2))
    with pytest.raises(ValueError, match="mask"):
        proposal_features(np.ones((3, 4), bool), torch.randn(2, 4, 4), torch.randn(2))
    with pytest.raises(ValueError, match="centre"):
        proposal_features(~mask, torch.randn(2, 4, 4), torch.randn(3))
    with pytest.raises(ValueError, match="stability must be >= 1"):
        proposal_features(~mask, torch.randn(2, 4, 4), torch.randn(2), stability=0)
    with pytest.raises(TypeError, match="stability must be an int"):
        proposal_features(~mask, torch.randn(2, 4, 4), torch.randn(2), stability=1.0)
