"""Instance grouping with hyperspherical pixel embeddings (Kong & Fowlkes 2018): train, evaluate, predict.

A dilated residual network (:mod:`pixelwise.models.pixel_embedding`) maps each pixel to a unit
vector; training pulls pixels of one instance together and pushes different instances below the
margin (:class:`~pixelwise.losses.PixelEmbeddingLoss`), optionally through ``T`` unrolled
iterations of recurrent mean shift with the same loss after every iteration (``iterations``;
0 trains the embedding alone). A semantic head trained with cross-entropy beside it labels the
extracted instances by majority vote (Sec. 5.4).

Instances are read off the embedding by :func:`pixelwise.grouping.extract_instances` (mean shift
on the 1/8 map at several bandwidths, seeds, full-resolution assignment, proposals pooled and
de-duplicated), scored by a linear regressor on proposal features fitted on training images
after training (``scorer.json`` in the run folder), and evaluated as object proposals (recall at
IoU 0.5 and AR over 0.5:0.95 for the top k) and as instance segmentation (AP^r at 0.5).

Data is ``synthetic`` (scenes of overlapping textured shapes generated on the fly, deterministic
per index, :mod:`pixelwise.data.synthetic_instances`) or a PASCAL VOC 2012 / SBD folder.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import write_text_atomic
from ..engine import OptimizerConfig, TrainConfig, config_to_dict, load_trained_model, train
from ..grouping import ExtractionConfig, ProposalScorer, extract_instances
from ..losses import PixelEmbeddingLoss
from ..metrics.instances import InstanceAP, ProposalRecall
from ..models import create_model
from ..nn import RecurrentMeanShift

MODELS = ("embedding_drn",)
IGNORE_LABEL = 255
TOP_K = (1, 5, 10, 20, 60)
SCORER_FILE = "scorer.json"


def _default_training() -> TrainConfig:
    # From scratch on CPU-sized scenes: Adam rather than the paper's SGD "poly" schedule, which was
    # tuned for fine-tuning an ImageNet ResNet; the rate drops 10x for the last quarter.
    return TrainConfig(steps=2000, batch_size=8, val_every=500, ckpt_every=250, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-5))


@dataclass
class InstancesConfig:
    model: str = "embedding_drn"
    embedding_dim: int = 64
    width: float = 0.5              # channel multiplier of the network
    blocks: int = 2                 # residual blocks per stage
    semantic: bool = True           # train a semantic head (labels instances by majority vote)
    data: str = "synthetic"         # "synthetic" or a VOC2012 / SBD folder
    train_split: str = "train"
    val_split: str = "val"
    val_images: int = 32            # validate on the first N validation images (0 = all)
    synthetic_train: int = 20000    # distinct training scenes (generated on the fly)
    synthetic_seed: int = 0
    image_size: int = 160           # synthetic scene side; training crop side for real data
    scene_max_objects: int = 7      # synthetic scenes: most objects per scene
    scene_clutter: int = 6          # synthetic scenes: background clutter items
    alpha: float = 0.5              # margin of the pairwise loss
    kappa: float = 6.0              # mean-shift concentration: 3 / (1 - alpha) (main text; 36 = supplement)
    eta: float = 1.0                # mean-shift step (1 = GBMS)
    iterations: int = 5             # T unrolled mean-shift iterations in the loss (0 = embedding loss only)
    loss_at_every_iteration: bool = True
    max_pixels: int = 1024          # pixels sampled per image for the N x N pairwise loss
    semantic_weight: float = 1.0
    scorer_images: int = 64         # training images used to fit the proposal scorer after training
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    train: TrainConfig = field(default_factory=_default_training)

    def check(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {self.model!r}")
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size: must be a multiple of 8 and >= 32, got {self.image_size}")
        if not 0 <= self.alpha < 1:
            raise ValueError(f"alpha: must be in [0, 1), got {self.alpha}")
        if self.iterations < 0 or self.max_pixels < 2:
            raise ValueError(f"iterations must be >= 0 and max_pixels >= 2, got {self.iterations}, {self.max_pixels}")


# ------------------------------------------------------------------------------------ data


@dataclass
class DataSplits:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    class_names: tuple[str, ...]


def load_splits(cfg: InstancesConfig) -> DataSplits:
    """Training and validation datasets for the config's data."""
    if cfg.data == "synthetic":
        from ..data.synthetic_instances import CLASS_NAMES, SyntheticInstances

        scene = scene_config(cfg)
        # A different seed stream for validation: no validation scene repeats a training scene.
        val_count = cfg.val_images or 32
        return DataSplits(SyntheticInstances(cfg.synthetic_train, seed=cfg.synthetic_seed, cfg=scene, augment=True),
                          SyntheticInstances(val_count, seed=cfg.synthetic_seed + 7919, cfg=scene),
                          tuple(CLASS_NAMES))
    from ..data.crops import RandomScaleCrop
    from ..data.voc_instances import VOC_CLASSES, VocInstances

    root = Path(cfg.data)
    if not root.exists():
        raise FileNotFoundError(f"data: {root} does not exist")
    train_set = RandomScaleCrop(VocInstances(root, cfg.train_split), cfg.image_size, seed=cfg.train.seed,
                                label_keys=("instances", "semantic"), ignore_index=IGNORE_LABEL)
    return DataSplits(train_set, VocInstances(root, cfg.val_split), tuple(VOC_CLASSES))


def scene_config(cfg: InstancesConfig):
    from ..data.synthetic_instances import SceneConfig

    return SceneConfig(height=cfg.image_size, width=cfg.image_size, max_objects=cfg.scene_max_objects,
                       clutter=cfg.scene_clutter)


# ------------------------------------------------------------------------------------ training


def model_config(cfg: InstancesConfig, num_classes: int) -> dict:
    return {"embedding_dim": cfg.embedding_dim, "num_classes": num_classes if cfg.semantic else 0,
            "width": cfg.width, "blocks": cfg.blocks}


def embedding_loss(cfg: InstancesConfig) -> PixelEmbeddingLoss:
    mean_shift = RecurrentMeanShift(cfg.kappa, cfg.eta, cfg.iterations) if cfg.iterations else None
    return PixelEmbeddingLoss(alpha=cfg.alpha, max_pixels=cfg.max_pixels, ignore_index=IGNORE_LABEL,
                              mean_shift=mean_shift, loss_at_every_iteration=cfg.loss_at_every_iteration)


def upsample(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)


def instance_loss(cfg: InstancesConfig):
    criterion = embedding_loss(cfg)

    def loss_fn(model, batch):
        out = model(batch["image"])
        size = batch["instances"].shape[-2:]
        # The loss normalises the sampled (bilinearly upsampled) vectors back onto the sphere.
        terms = criterion.per_iteration(upsample(out["embedding"], size), batch["instances"])
        embed = sum(terms) if cfg.loss_at_every_iteration else terms[-1]
        logs = {"embed_0": terms[0].item(), f"embed_{len(terms) - 1}": terms[-1].item()}
        loss = embed
        if "semantic" in out:
            ce = F.cross_entropy(upsample(out["semantic"], size), batch["semantic"], ignore_index=IGNORE_LABEL)
            loss = loss + cfg.semantic_weight * ce
            logs["ce"] = ce.item()
        return loss, logs

    return loss_fn


def train_instances(cfg: InstancesConfig, run_dir: Path, *, resume: bool = False, log=print):
    """Train the embedding network into ``run_dir``, then fit the proposal scorer."""
    cfg.check()
    run_dir = Path(run_dir)
    splits = load_splits(cfg)
    val_count = min(len(splits.val), cfg.val_images or len(splits.val))
    log(f"{len(splits.train)} training images, {val_count} validation images, "
        f"T = {cfg.iterations} mean-shift iterations in the loss")

    def validate(model):
        result = evaluate_dataset(model, splits.val, cfg, max_images=val_count)
        keep = ("recall50@10", "ar@10", "map")
        return {f"val_{k.replace('@', '_at_')}": result["summary"][k] for k in keep}

    torch.manual_seed(cfg.train.seed)
    mcfg = model_config(cfg, len(splits.class_names))
    model = create_model(cfg.model, **mcfg)
    result = train(model, splits.train, instance_loss(cfg), cfg.train, run_dir, model_name=cfg.model,
                   model_config=mcfg, validate=validate, full_config=config_to_dict(cfg), resume=resume, log=log)
    # Rank 0 only: under torchrun every rank returns here with the same weights.
    if not result.interrupted and int(os.environ.get("RANK", "0")) == 0 and cfg.scorer_images:
        scorer = fit_scorer(model, splits.train, cfg, cfg.scorer_images)
        write_text_atomic(run_dir / SCORER_FILE, json.dumps(scorer.to_dict(), indent=2))
        log(f"proposal scorer fitted on {cfg.scorer_images} training images -> {run_dir / SCORER_FILE}")
    return result


# ------------------------------------------------------------------------------------ inference


@dataclass
class Prediction:
    embedding: torch.Tensor         # (D, h, w) unit vectors at 1/8
    semantic: np.ndarray | None     # (H, W) class ids (argmax of the upsampled logits)
    proposals: object               # grouping.Proposals at full resolution
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
    from ..data.voc_instances import instance_masks
    from ..metrics.instances import mask_iou

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
    from ..data.voc_instances import instance_masks

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


@dataclass
class LoadedModel:
    model: torch.nn.Module
    cfg: InstancesConfig
    scorer: ProposalScorer | None
    class_names: tuple[str, ...]


def load_instances_model(spec: str | Path, device: str = "cpu") -> LoadedModel:
    """A trained model from a run folder (or checkpoint) with its settings and fitted scorer."""
    from ..engine import config_from_dict

    run_dir = Path(spec) if Path(spec).is_dir() else Path(spec).parent
    model, ckpt = load_trained_model(spec, create_model, MODELS)
    saved = ckpt.meta.get("config") or {}
    cfg = config_from_dict(InstancesConfig, saved) if saved else InstancesConfig()
    scorer = None
    if (run_dir / SCORER_FILE).exists():
        scorer = ProposalScorer.from_dict(json.loads((run_dir / SCORER_FILE).read_text()))
    names = class_names(cfg)
    return LoadedModel(model.to(device).eval(), cfg, scorer, names)


def class_names(cfg: InstancesConfig) -> tuple[str, ...]:
    """Names of the semantic classes the config's data uses (synthetic shapes or VOC)."""
    if cfg.data == "synthetic":
        from ..data.synthetic_instances import CLASS_NAMES
        return tuple(CLASS_NAMES)
    from ..data.voc_instances import VOC_CLASSES
    return tuple(VOC_CLASSES)


def evaluation_dataset(data: str, cfg: InstancesConfig, split: str = "val"):
    """The held-out synthetic scenes the model was validated on, or a VOC / SBD split."""
    if data == "synthetic":
        from ..data.synthetic_instances import SyntheticInstances

        scene = scene_config(cfg)
        return SyntheticInstances(max(cfg.val_images, 1), seed=cfg.synthetic_seed + 7919, cfg=scene)
    from ..data.voc_instances import VocInstances

    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data}: no such folder")
    return VocInstances(Path(data), split)


def run_evaluation(model_spec: str, data: str, out: Path, *, split: str = "val", max_images: int = 0,
                   examples: int = 6, device: str = "cpu", log=print) -> tuple[dict, Path]:
    """Evaluate a trained model; write ``out/metrics.json`` and ``out/report.html``."""
    from .instances_report import write_instances_report

    loaded = load_instances_model(model_spec, device)
    dataset = evaluation_dataset(data, loaded.cfg, split)
    result = evaluate_dataset(loaded.model, dataset, loaded.cfg, scorer=loaded.scorer, max_images=max_images,
                              keep_examples=examples, log=log)
    names = loaded.class_names
    ap = dict(result["ap"])
    ap["ap_per_class"] = {names[int(c)] if int(c) < len(names) else str(c): v
                          for c, v in ap.get("ap_per_class", {}).items()}
    summary = {"model": str(model_spec), "data": str(data), "split": split if data != "synthetic" else None,
               "summary": result["summary"], "ap": ap,
               "scorer": "fitted" if loaded.scorer is not None else "default"}
    out = Path(out)
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2, default=float))
    report = write_instances_report(out / "report.html", result, ap["ap_per_class"],
                                    primary_kappa=loaded.cfg.extraction.kappas[0], title="pixelwise instances eval",
                                    description=f"{result['summary']['images']} image(s) from {data}")
    return summary, report


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")


def predict_folder(loaded: LoadedModel, images: Path, out: Path, *, log=print) -> list[Path]:
    """Instance maps for an image or a folder of images.

    Writes ``instances/<name>.png`` (palette PNG of instance ids in score order, 0 = unassigned /
    background, the VOC ``SegmentationObject`` format), ``overlays/<name>.png``,
    ``embeddings/<name>.png`` (random projection of the embedding to RGB) and, with a semantic
    head, ``semantic/<name>.png`` (palette PNG of class ids).
    """
    from ..data.formats import read_rgb, write_png
    from ..data.voc_instances import write_palette_png
    from ..report.instances import embedding_to_rgb, instance_overlay
    from .instances_report import primary_masks

    images = Path(images)
    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"--images {images}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    elif images.is_file():
        files = [images]
    else:
        raise FileNotFoundError(f"--images {images}: no such file or folder")
    out = Path(out)
    written = []
    for path in files:
        rgb = read_rgb(path)
        image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
        pred = predict_image(loaded.model, image, loaded.cfg, loaded.scorer)
        ids = proposal_id_map(primary_masks(pred.proposals, loaded.cfg.extraction.kappas[0]))
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


def proposal_id_map(masks: np.ndarray, limit: int = 254) -> np.ndarray:
    """Non-overlapping instance ids from score-ordered proposal masks: each pixel takes the best
    proposal covering it (ids 1..limit, in score order; 0 where none does)."""
    masks = np.asarray(masks, bool)
    ids = np.zeros(masks.shape[1:], np.uint8)
    for k in range(min(len(masks), limit) - 1, -1, -1):  # best last, so it wins overlaps
        ids[masks[k]] = k + 1
    return ids
