"""Instance grouping with a trained embedding network, on tensors and files: embed an image and
extract its instances (:func:`predict_image`), fit the proposal scorer (:func:`fit_scorer`),
measure proposal recall and AP^r over a dataset (:func:`evaluate_dataset`) and write instance
maps for image files (:func:`predict_folder`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...data.datasets.voc_instances import IGNORE_LABEL, instance_masks
from ...data.io.files import image_files
from ...data.io.formats import read_rgb, write_png
from ...data.io.palette_png import write_palette_png
from ...grouping import Proposals, ProposalScorer, extract_instances
from ...metrics.instances import InstanceAP, ProposalRecall, mask_iou
from ...report.instances import embedding_to_rgb, instance_overlay
from ..base import LoadedRun
from .config import InstancesConfig

__all__ = ["TOP_K", "Prediction", "evaluate_dataset", "fit_scorer", "predict_folder",
           "predict_image", "primary_masks", "proposal_id_map", "upsample"]

TOP_K = (1, 5, 10, 20, 60)


def upsample(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)


@dataclass
class Prediction:
    embedding: torch.Tensor         # (D, h, w) unit vectors at 1/8
    semantic: np.ndarray | None     # (H, W) class ids (argmax of the upsampled logits)
    proposals: Proposals            # at full resolution
    network_s: float
    extraction_s: float


def predict_image(model, image: torch.Tensor, cfg: InstancesConfig, scorer: ProposalScorer | None = None) -> Prediction:
    """Embed one ``(3, H, W)`` image and extract its instances at full resolution."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got shape {tuple(image.shape)}")
    device = next(model.parameters()).device
    size = image.shape[-2:]
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(image[None].to(device))
    semantic = None
    if "semantic" in out:
        semantic = upsample(out["semantic"], size).argmax(1)[0].cpu().numpy()
    t1 = time.perf_counter()
    embedding = out["embedding"][0].cpu()
    # Background segments stay proposals (class 0): AR is class-agnostic, and the scorer learns to rank
    # them low from the is_background feature; AP^r ignores class 0, which has no ground truth.
    proposals = extract_instances(embedding, tuple(size), cfg.extraction, semantic=semantic, scorer=scorer,
                                  drop_background=False)
    return Prediction(embedding, semantic, proposals, t1 - t0, time.perf_counter() - t1)


def fit_scorer(model, dataset, cfg: InstancesConfig, images: int) -> ProposalScorer:
    """Fit the linear proposal scorer: features of every proposal -> its best IoU with the ground truth."""
    was_training = model.training
    model.eval()
    features, ious = [], []
    for i in range(min(images, len(dataset))):
        item = dataset[i]
        pred = predict_image(model, item["image"], cfg)
        masks, _, ignore = instance_masks(item["instances"].numpy(), item["semantic"].numpy(), IGNORE_LABEL)
        p = pred.proposals
        if len(p.masks) == 0:
            continue
        iou = mask_iou(p.masks, masks, ignore)
        features.append(p.features)
        ious.append(iou.max(1) if iou.shape[1] else np.zeros(len(p.masks)))
    model.train(was_training)
    scorer = ProposalScorer()
    if features:
        scorer.fit(np.concatenate(features), np.concatenate(ious))
    return scorer


def evaluate_dataset(model, dataset, cfg: InstancesConfig, *, scorer: ProposalScorer | None = None,
                     max_images: int = 0, keep_examples: int = 0, log=None) -> dict:
    """Proposal recall and AP^r over the first ``max_images`` images (0 = all)."""
    was_training = model.training
    model.eval()
    recall, ap = ProposalRecall(), InstanceAP()
    count = min(len(dataset), max_images or len(dataset))
    network_s, extraction_s, proposals, examples = [], [], [], []
    for i in range(count):
        item = dataset[i]
        pred = predict_image(model, item["image"], cfg, scorer)
        instances, semantic = item["instances"].numpy(), item["semantic"].numpy()
        masks, classes, ignore = instance_masks(instances, semantic, IGNORE_LABEL)
        p = pred.proposals
        recall.update(p.masks, p.scores, masks, ignore)
        if pred.semantic is None:  # no semantic head: class-agnostic AP^r (every instance is "object")
            ap.update(p.masks, p.scores, np.ones(len(p.masks), int), masks, np.ones(len(masks), int), ignore)
        else:
            ap.update(p.masks, p.scores, p.classes, masks, classes, ignore)
        network_s.append(pred.network_s)
        extraction_s.append(pred.extraction_s)
        proposals.append(len(p.masks))
        if i < keep_examples:
            examples.append({"name": item.get("name", f"{i:04d}"), "image": item["image"].permute(1, 2, 0).numpy(),
                             "instances": instances, "prediction": pred})
        if log:
            log(f"image {i + 1}/{count}: {len(masks)} instances, {len(p.masks)} proposals")
    model.train(was_training)
    rec = recall.result(top_k=TOP_K)
    aps = ap.result()
    summary = {**{k: v for k, v in rec.items() if "@" in k}, "map": aps["map"], "images": count,
               "mean_proposals": float(np.mean(proposals)) if proposals else 0.0,
               "network_ms": 1e3 * float(np.median(network_s)) if network_s else None,
               "extraction_ms": 1e3 * float(np.median(extraction_s)) if extraction_s else None}
    return {"summary": summary, "recall": rec, "ap": aps, "examples": examples}


def primary_masks(proposals: Proposals, primary_kappa: float) -> np.ndarray:
    """The primary bandwidth's proposals that are not background (majority class 0): one partition,
    so they never overlap."""
    keep = (np.asarray(proposals.kappa_of) == primary_kappa) & (np.asarray(proposals.classes) != 0)
    return proposals.masks[keep]


def proposal_id_map(masks: np.ndarray, limit: int = 254) -> np.ndarray:
    """Non-overlapping instance ids from score-ordered proposal masks: each pixel takes the best
    proposal covering it (ids 1..limit, in score order; 0 where none does)."""
    masks = np.asarray(masks, bool)
    ids = np.zeros(masks.shape[1:], np.uint8)
    for k in range(min(len(masks), limit) - 1, -1, -1):  # best last, so it wins overlaps
        ids[masks[k]] = k + 1
    return ids


def predict_folder(loaded: LoadedRun, images: Path, out: Path, *, log=print) -> list[Path]:
    """Instance maps for an image or a folder of images with a model from
    :func:`pixelwise.tasks.load_run` (its config and fitted scorer).

    Writes ``instances/<name>.png`` (palette PNG of instance ids in score order, 0 = unassigned /
    background, the VOC ``SegmentationObject`` format), ``overlays/<name>.png``,
    ``embeddings/<name>.png`` (random projection of the embedding to RGB) and, with a semantic
    head, ``semantic/<name>.png`` (palette PNG of class ids).
    """
    files = image_files(Path(images))
    cfg, scorer = loaded.config, loaded.extras.get("scorer")
    out = Path(out)
    written = []
    for path in files:
        rgb = read_rgb(path)
        image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
        pred = predict_image(loaded.model, image, cfg, scorer)
        ids = proposal_id_map(primary_masks(pred.proposals, cfg.extraction.kappas[0]))
        target = out / "instances" / f"{path.stem}.png"
        write_palette_png(target, ids)
        write_png(out / "overlays" / f"{path.stem}.png", instance_overlay(rgb, ids))
        emb = upsample(pred.embedding[None], rgb.shape[:2])[0]
        write_png(out / "embeddings" / f"{path.stem}.png", embedding_to_rgb(emb))
        if pred.semantic is not None:
            write_palette_png(out / "semantic" / f"{path.stem}.png", pred.semantic.astype(np.uint8))
        written.append(target)
        log(f"{path.name}: {len(pred.proposals.masks)} instances, network {pred.network_s * 1e3:.0f} ms, "
            f"extraction {pred.extraction_s * 1e3:.0f} ms -> {target}")
    return written
