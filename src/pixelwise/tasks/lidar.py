"""LiDAR point-cloud segmentation (SqueezeSegV3, Xu et al. 2020): train, evaluate, predict.

Scans are projected to range images (:mod:`pixelwise.data.spherical_projection`), segmented by
a SqueezeSegV3 network (:mod:`pixelwise.models.squeezeseg`), and the per-pixel prediction is
read back for *every* point -- also the points that lost their pixel to a closer one -- and
optionally refined by kNN voting (:func:`pixelwise.ops.knn_refine`). Evaluation follows the
SemanticKITTI protocol on points; the range-image score the paper's ablation uses is reported
beside it, because it flatters (collided points are never scored).

Data is a SemanticKITTI folder, or ``synthetic``: scans from the simulated 64-beam sensor of
:mod:`pixelwise.data.synthetic_lidar`, generated once into the run folder (training scans as
sequence 00, validation scans as sequence 08, like the real split).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_text_atomic
from ..data.lidar_scans import Augmentation, LidarScans, label_histogram, load_scan, range_sample
from ..data.semantic_kitti import IGNORE_INDEX, NUM_CLASSES, SPLITS, LabelMap, find_scans
from ..data.spherical_projection import ProjectionConfig, project_labels
from ..engine import OptimizerConfig, TrainConfig, config_to_dict, load_trained_model, train
from ..losses.segmentation import class_weights, multi_layer_cross_entropy
from ..metrics.segmentation import ConfusionAccumulator
from ..models import create_model
from ..ops import knn_refine

MODELS = ("ssgv3_21", "ssgv3_53")
SYNTHETIC_TRAIN_SEQUENCE, SYNTHETIC_VAL_SEQUENCE = "00", "08"


def _paper_training() -> TrainConfig:
    # Xu et al. 2020: SGD, lr 0.01 (SSGV3-21), momentum 0.9, weight decay 1e-4, 1 warm-up epoch,
    # then a per-epoch decay (the warm-up and decay are set from warmup_epochs / epoch_decay).
    return TrainConfig(steps=20000, batch_size=8, val_every=1000, ckpt_every=500, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4))


@dataclass
class KnnConfig:
    """RangeNet++ kNN refinement settings (the paper's defaults)."""

    enabled: bool = True
    window: int = 7
    k: int = 7
    sigma: float = 1.0
    cutoff: float = 1.0  # metres

    def options(self) -> dict:
        return {"window": self.window, "k": self.k, "sigma": self.sigma, "cutoff": self.cutoff}


@dataclass
class LidarConfig:
    model: str = "ssgv3_21"
    block: str = "ISK"              # first conv of every residual block: plain, S, IS, SK, ISK, PAC, SE, CBAM, CAM
    width: float = 1.0              # channel multiplier of the whole network
    data: str = "synthetic"         # "synthetic" or a SemanticKITTI folder
    train_sequences: list[str] = field(default_factory=lambda: [f"{s:02d}" for s in SPLITS["train"]])
    val_sequences: list[str] = field(default_factory=lambda: [f"{s:02d}" for s in SPLITS["valid"]])
    val_scans: int = 0              # validate on the first N validation scans (0 = all)
    synthetic_scans: int = 400      # training scans generated when data = synthetic
    synthetic_val_scans: int = 16
    synthetic_seed: int = 0
    height: int = 64
    image_width: int = 2048
    fov_up: float = 3.0
    fov_down: float = -25.0
    augment: bool = True
    class_weight_eps: float = 1e-3
    warmup_epochs: float = 1.0      # linear warm-up (0 = none)
    epoch_decay: float = 0.99       # learning rate x this per epoch (1 = constant)
    knn: KnnConfig = field(default_factory=KnnConfig)
    train: TrainConfig = field(default_factory=_paper_training)

    def check(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {self.model!r}")
        if self.image_width % 8:
            raise ValueError(f"image_width: must be a multiple of 8 (the network's width stride), got {self.image_width}")
        if self.data == "synthetic" and (self.synthetic_scans < 1 or self.synthetic_val_scans < 1):
            raise ValueError("synthetic_scans and synthetic_val_scans must be >= 1")
        if self.warmup_epochs < 0 or not 0 < self.epoch_decay <= 1:
            raise ValueError(f"warmup_epochs must be >= 0 and epoch_decay in (0, 1], got {self.warmup_epochs}, "
                             f"{self.epoch_decay}")
        self.projection()

    def projection(self) -> ProjectionConfig:
        return ProjectionConfig(self.height, self.image_width, self.fov_up, self.fov_down)


def model_config(cfg: LidarConfig) -> dict:
    return {"num_classes": NUM_CLASSES, "block": cfg.block, "width": cfg.width}


# ------------------------------------------------------------------------------------ data


def prepare_synthetic(root: Path, train_scans: int, val_scans: int, seed: int = 0, *, log=print) -> Path:
    """Generate the synthetic dataset into ``root`` once (sequence 00 train, 08 validation).

    A ``synthetic.json`` manifest records what was generated; a folder made with other settings is
    an error rather than silently mixed data.
    """
    from ..data.synthetic_lidar import write_synthetic_sequences

    root = Path(root)
    manifest = {"train_scans": train_scans, "val_scans": val_scans, "seed": seed}
    path = root / "synthetic.json"
    if path.exists():
        found = json.loads(path.read_text())
        if found != manifest:
            raise ValueError(f"{root}: holds synthetic scans made with {found}, not {manifest}; "
                             f"choose another folder")
        return root
    log(f"generating {train_scans} + {val_scans} synthetic scans into {root}")
    write_synthetic_sequences(root, train_scans, seed=seed, sequence=SYNTHETIC_TRAIN_SEQUENCE)
    # A different seed stream: validation scenes never repeat a training scene.
    write_synthetic_sequences(root, val_scans, seed=seed + 7919, sequence=SYNTHETIC_VAL_SEQUENCE)
    write_text_atomic(path, json.dumps(manifest))
    return root


def dataset_records(cfg: LidarConfig, run_dir: Path, *, log=print):
    """(train records, validation records) for the config's data."""
    if cfg.data == "synthetic":
        root = prepare_synthetic(Path(run_dir) / "scans", cfg.synthetic_scans, cfg.synthetic_val_scans,
                                 cfg.synthetic_seed, log=log)
        train_seq, val_seq = [SYNTHETIC_TRAIN_SEQUENCE], [SYNTHETIC_VAL_SEQUENCE]
    else:
        root, train_seq, val_seq = Path(cfg.data), cfg.train_sequences, cfg.val_sequences
        if not root.exists():
            raise FileNotFoundError(f"data: {root} does not exist")
    train_records = find_scans(root, sequences=train_seq, require_labels=True)
    val_records = find_scans(root, sequences=val_seq, require_labels=True) if val_seq else []
    if cfg.val_scans:
        val_records = val_records[: cfg.val_scans]
    return train_records, val_records


# ------------------------------------------------------------------------------------ training


def segmentation_loss(weights: torch.Tensor):
    def loss_fn(model, batch):
        logits = model(batch["input"], aux=True)
        return multi_layer_cross_entropy(logits, batch["labels"], weights.to(logits[0].device),
                                         ignore_index=IGNORE_INDEX)

    return loss_fn


def range_image_scores(model, samples: list[dict], device=None):
    """Range-image (pixel) confusion over pre-projected samples, as in the paper's ablation."""
    acc = ConfusionAccumulator(NUM_CLASSES, ignore=(IGNORE_INDEX,))
    device = device or next(model.parameters()).device
    with torch.no_grad():
        for s in samples:
            pred = model(s["input"][None].to(device), aux=False).argmax(1)[0].cpu()
            acc.update(pred, s["labels"])
    return acc.scores()


def train_lidar(cfg: LidarConfig, run_dir: Path, *, resume: bool = False, log=print):
    """Train ``cfg.model`` with ``cfg.block`` blocks into ``run_dir``."""
    cfg.check()
    run_dir = Path(run_dir)
    label_map = LabelMap.default()
    train_records, val_records = dataset_records(cfg, run_dir, log=log)
    projection = cfg.projection()
    counts = label_histogram(train_records, label_map, NUM_CLASSES)
    weights = class_weights(counts / max(1, counts.sum()), eps=cfg.class_weight_eps, ignore_index=IGNORE_INDEX)
    steps_per_epoch = max(1, len(train_records) // cfg.train.batch_size)
    if cfg.warmup_epochs or cfg.epoch_decay != 1:
        cfg.train.schedule.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        cfg.train.schedule.decay_rate = cfg.epoch_decay
        cfg.train.schedule.decay_every = steps_per_epoch
    train_set = LidarScans(train_records, projection, label_map, Augmentation() if cfg.augment else None,
                           seed=cfg.train.seed)
    val_samples = [LidarScans(val_records, projection, label_map)[i] for i in range(len(val_records))]
    log(f"{len(train_records)} training scans ({steps_per_epoch} steps per epoch), {len(val_records)} validation "
        f"scans, {projection.height}x{projection.width} range images")

    def validate(model):
        scores = range_image_scores(model, val_samples)
        return {"val_miou": scores.miou, "val_miou_present": scores.miou_present, "val_acc": scores.accuracy}

    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model, **model_config(cfg))
    return train(model, train_set, segmentation_loss(weights), cfg.train, run_dir, model_name=cfg.model,
                 model_config=model_config(cfg), validate=validate if val_samples else None,
                 full_config=config_to_dict(cfg), resume=resume, log=log)


# ------------------------------------------------------------------------------------ inference


@dataclass
class LoadedModel:
    model: torch.nn.Module
    name: str
    projection: ProjectionConfig
    knn: KnnConfig


def load_lidar_model(spec: str | Path, device: str = "cpu") -> LoadedModel:
    """A trained model from a run folder or checkpoint, with the projection it was trained on."""
    model, ckpt = load_trained_model(spec, create_model, MODELS)
    saved = ckpt.meta.get("config") or {}
    cfg = LidarConfig()
    projection = ProjectionConfig(saved.get("height", cfg.height), saved.get("image_width", cfg.image_width),
                                  saved.get("fov_up", cfg.fov_up), saved.get("fov_down", cfg.fov_down))
    knn = KnnConfig(**saved["knn"]) if isinstance(saved.get("knn"), dict) else KnnConfig()
    return LoadedModel(model.to(device).eval(), ckpt.model_name, projection, knn)


@dataclass
class ScanPrediction:
    pixel_labels: torch.Tensor      # (H, W) network argmax per pixel
    point_labels: torch.Tensor      # (N,) read back at every point's pixel
    knn_labels: torch.Tensor | None  # (N,) after kNN refinement
    image: object                   # the RangeImage
    network_s: float
    knn_s: float


def predict_points(loaded: LoadedModel, points: np.ndarray, *, knn: bool = True) -> ScanPrediction:
    """Segment one point cloud: network on the range image, labels read back per point, kNN."""
    x, _, image = range_sample(points, None, loaded.projection)
    device = next(loaded.model.parameters()).device
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = loaded.model(x[None].to(device), aux=False)
        pixel = logits.argmax(1)[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    u, v = torch.from_numpy(image.u).to(device), torch.from_numpy(image.v).to(device)
    point = pixel[v, u]
    refined = None
    if knn:
        rng = torch.from_numpy(image.channels[0]).to(device)
        refined = knn_refine(rng, pixel, torch.from_numpy(image.point_range).to(device), u, v,
                             num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, **loaded.knn.options())
        if device.type == "cuda":
            torch.cuda.synchronize()
    t2 = time.perf_counter()
    return ScanPrediction(pixel.cpu(), point.cpu(), None if refined is None else refined.cpu(), image,
                          t1 - t0, t2 - t1)


def evaluate_scans(loaded: LoadedModel, records, *, knn: bool = True, label_map: LabelMap | None = None,
                   keep_examples: int = 1, log=print) -> dict:
    """Point-level scores (with and without kNN) and range-image scores over labelled scans."""
    label_map = label_map or LabelMap.default()
    acc = {"point": ConfusionAccumulator(NUM_CLASSES), "pixel": ConfusionAccumulator(NUM_CLASSES)}
    if knn:
        acc["point_knn"] = ConfusionAccumulator(NUM_CLASSES)
    network_s, knn_s, examples, points_total = [], [], [], 0
    for i, record in enumerate(records):
        points, labels = load_scan(record, label_map)
        pred = predict_points(loaded, points, knn=knn)
        target = torch.from_numpy(labels)
        acc["point"].update(pred.point_labels, target)
        if knn:
            acc["point_knn"].update(pred.knn_labels, target)
        pixel_target = torch.from_numpy(project_labels(labels, pred.image, fill=IGNORE_INDEX))
        acc["pixel"].update(pred.pixel_labels, pixel_target)
        network_s.append(pred.network_s)
        knn_s.append(pred.knn_s)
        points_total += len(points)
        if i < keep_examples:
            examples.append({"name": f"{record.sequence}/{record.frame}", "range": pred.image.channels[0],
                             "mask": pred.image.mask, "target": pixel_target.numpy(),
                             "pred": pred.pixel_labels.numpy()})
        log(f"{record.sequence}/{record.frame}: {len(points)} points, network {pred.network_s * 1e3:.0f} ms"
            + (f", kNN {pred.knn_s * 1e3:.0f} ms" if knn else ""))
    scores = {name: a.scores() for name, a in acc.items()}
    return {"scores": scores, "scans": len(records), "points": points_total,
            "network_ms": 1e3 * float(np.median(network_s)) if network_s else None,
            "knn_ms": 1e3 * float(np.median(knn_s)) if knn and knn_s else None, "examples": examples}


def predict_scans(loaded: LoadedModel, records, out: Path, *, knn: bool = True, png: bool = True, ply: bool = False,
                  label_map: LabelMap | None = None, log=print) -> list[Path]:
    """Write submission-ready ``.label`` files (``out/sequences/<seq>/predictions/<frame>.label``),
    plus a colour range-image PNG (``out/images/<seq>/<frame>.png``) and optionally a coloured
    point cloud (``out/ply/<seq>/<frame>.ply``) per scan."""
    from ..data.ply import write_ply
    from ..data.semantic_kitti import prediction_path, read_scan, write_label
    from ..report import save_png

    label_map = label_map or LabelMap.default()
    out = Path(out)
    written = []
    for record in records:
        points = read_scan(record.scan_path)
        pred = predict_points(loaded, points, knn=knn)
        labels = (pred.knn_labels if knn else pred.point_labels).numpy()
        path = prediction_path(out, record)
        write_label(path, label_map.to_raw(labels))
        written.append(path)
        # Figures live outside sequences/ so that folder zips as a submission as it is.
        if png:
            save_png(out / "images" / record.sequence / f"{record.frame}.png",
                     label_image(pred.pixel_labels.numpy(), pred.image.mask, label_map))
        if ply:
            write_ply(out / "ply" / record.sequence / f"{record.frame}.ply", points[:, :3], label_map.colors[labels])
        log(f"{record.sequence}/{record.frame}: {len(points)} points -> {path}")
    return written


def label_image(labels: np.ndarray, mask: np.ndarray, label_map: LabelMap) -> np.ndarray:
    """(H, W, 3) uint8 colours of a label map (SemanticKITTI colours), black where empty."""
    rgb = label_map.colors[np.clip(labels, 0, len(label_map.colors) - 1)]
    rgb[~mask] = 0
    return rgb


def scores_json(result: dict, class_names) -> dict:
    """The JSON-friendly part of :func:`evaluate_scans`' result."""
    return {"scans": result["scans"], "points": result["points"], "network_ms": result["network_ms"],
            "knn_ms": result["knn_ms"],
            **{name: s.to_dict(class_names) for name, s in result["scores"].items()}}


def run_evaluation(model_spec: str, data: str, out: Path, *, sequences=None, max_scans: int = 0, knn: bool = True,
                   device: str = "cpu", log=print) -> tuple[dict, Path]:
    """Evaluate a trained model on labelled scans; write ``out/metrics.json`` and ``out/report.html``."""
    from ..data.semantic_kitti import CLASS_NAMES
    from .lidar_report import write_lidar_report

    loaded = load_lidar_model(model_spec, device)
    records = find_scans(data, sequences=sequences, require_labels=True)
    if max_scans:
        records = records[:max_scans]
    result = evaluate_scans(loaded, records, knn=knn, log=log)
    summary = scores_json(result, CLASS_NAMES)
    summary.update({"model": str(model_spec), "data": str(data),
                    "projection": {"height": loaded.projection.height, "width": loaded.projection.width}})
    out = Path(out)
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2))
    report = write_lidar_report(out / "report.html", result, title=f"pixelwise lidar eval: {loaded.name}",
                                description=f"{result['scans']} scan(s) from {data}, {result['points']} points")
    return summary, report
