"""LiDAR point-cloud segmentation (SqueezeSegV3, Xu et al. 2020) behind the Task contract:
``pixelwise lidar synth|train|eval|predict|import-official``, its demo part and its
benchmark.

Scans are projected to range images (:mod:`pixelwise.data.transforms.spherical_projection`),
segmented by a SqueezeSegV3 network (:mod:`pixelwise.models.squeezeseg`), and the per-pixel
prediction is read back for *every* point -- also the points that lost their pixel to a closer
one -- and optionally refined by kNN voting (:func:`pixelwise.ops.knn_refine`). Evaluation
follows the SemanticKITTI protocol on points; the range-image score the paper's ablation uses is
reported beside it, because it flatters (collided points are never scored).

Data is a SemanticKITTI folder, or ``synthetic``: scans generated once into the run folder
(:mod:`.scans`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ...checks import parse_positive_int
from ...data.datasets.lidar_scans import LidarScans, label_histogram
from ...data.datasets.semantic_kitti import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, LabelMap, find_scans
from ...data.transforms.range_samples import Augmentation
from ...losses.segmentation import class_weights, multi_layer_cross_entropy
from ...ops.range_knn import KNN_MODES
from ..base import Evaluation, LoadedRun, Option, Splits, Task, Verb
from ..loading import load_run
from ..registry import register_task
from . import bench
from .config import ABLATION_MODELS, MODELS, LidarConfig
from .demo import LidarDemoBudget, run_lidar_demo
from .inference import evaluate_scans, predict_scans, range_image_scores, scores_json
from .official import OFFICIAL_PREFIX, import_official, load_official
from .report import lidar_report
from .scans import dataset_records, prepare_synthetic

__all__ = ["LidarTask", "segmentation_loss"]

FOLLOW_SYMLINKS = Option("--follow-symlinks", "accept folders, scans and labels that are symbolic links leading "
                                              "outside the data folder", action="store_true")
NO_KNN = Option("--no-knn", "skip the kNN refinement", action="store_true")
KNN_MODE = Option("--knn-mode", "kNN rule: 'default' (documented here) or 'reference' (RangeNet++'s KNN.py point "
                                "for point); default: the model's", choices=KNN_MODES)


def segmentation_loss(weights: torch.Tensor):
    """The paper's loss: weighted cross-entropy summed over the five output heads."""
    def loss_fn(model, batch):
        logits = model(batch["input"], aux=True)
        return multi_layer_cross_entropy(logits, batch["labels"], weights.to(logits[0].device),
                                         ignore_index=IGNORE_INDEX)

    return loss_fn


def _synth(options, log) -> int:
    root = prepare_synthetic(Path(options.out), options.scans, options.val_scans, options.seed, log=log)
    print(f"wrote {options.scans} training and {options.val_scans} validation scans under {root / 'sequences'}")
    return 0


def _import_official(options, log) -> int:
    out = import_official(options.folder, options.out, log=log)
    print(f"imported {options.folder} into {out}; evaluate with: pixelwise lidar eval --model {out} --data <folder> "
          f"--out <folder>")
    return 0


@register_task
class LidarTask(Task):
    name = "lidar"
    summary = "LiDAR point-cloud segmentation on SemanticKITTI-format scans (SqueezeSegV3)"
    doc = "docs/lidar.md"
    config_class = LidarConfig
    data_sources = ("synthetic", "<SemanticKITTI folder>")
    headline = ("the released SSGV3-21 trained 60 CPU steps on synthetic scans only: point mIoU 4.8, 4.9 with kNN "
                "(19 classes, server formula) on 3 real SemanticKITTI scans")
    train_options = (
        Option("--model", "network", choices=MODELS, key="model"),
        Option("--block", "ablation models only: first conv of each residual block, ISK (default), plain, S, IS, "
                          "SK, PAC, SE, CBAM, CAM", key="block"),
        Option("--width", "channel multiplier (1 = the paper's network)", type=float, key="width"),
        Option("--data", "'synthetic' (generated into the run folder) or a SemanticKITTI folder", key="data"),
        Option("--image-width", "range-image width (a multiple of 8)", type=parse_positive_int, key="image_width"),
    )
    eval_options = (
        Option("--data", "SemanticKITTI folder (or one sequence / scan) with labels", required=True),
        Option("--sequences", "only these sequences (e.g. 08)", nargs="*"),
        Option("--max-scans", "only the first N scans", type=parse_positive_int),
        NO_KNN,
        KNN_MODE,
        FOLLOW_SYMLINKS,
    )
    predict_options = (
        Option("--scans", "a SemanticKITTI folder, a sequence, a velodyne/ folder or a .bin", required=True),
        Option("--out", "writes <out>/sequences/<seq>/predictions/<frame>.label", required=True),
        NO_KNN,
        KNN_MODE,
        Option("--no-png", "no colour range-image PNGs", action="store_true"),
        Option("--ply", "also write a coloured PLY point cloud per scan", action="store_true"),
        FOLLOW_SYMLINKS,
    )
    demo_options = (
        Option("--steps", "LiDAR training steps", type=parse_positive_int, default=LidarDemoBudget.steps),
        Option("--scans", "labelled SemanticKITTI scans to evaluate the LiDAR model on (default: "
                          "<data-root>/semantic-kitti when present, else held-out synthetic scans)"),
    )
    bench_options = bench.OPTIONS
    verbs = (Verb("synth", "generate synthetic 64-beam scans with labels in SemanticKITTI layout", (
        Option("--out", "dataset root (writes sequences/00 for training, 08 for validation)", required=True),
        Option("--scans", "training scans (sequence 00)", type=parse_positive_int, default=400),
        Option("--val-scans", "validation scans (sequence 08)", type=parse_positive_int, default=16),
        Option("--seed", "seed of the generated scenes", type=int, default=0),
    ), _synth), Verb("import-official", "convert an official SqueezeSegV3 log folder (backbone, segmentation_decoder, "
                                        "segmentation_head1..5, arch_cfg.yaml, data_cfg.yaml) into a run folder", (
        Option("--folder", "the official log folder", required=True),
        Option("--out", "run folder to write (model.safetensors + .json, config.yaml, imported.json)", required=True),
    ), _import_official))
    model_help = (f"a trained run folder, checkpoint, zoo name, or {OFFICIAL_PREFIX}<folder> (an official "
                  f"SqueezeSegV3 log folder, converted on the fly)")
    eval_help = "point-level IoU per class, with and without kNN; metrics.json and report.html"
    predict_help = "submission-ready .label files (plus PNG / PLY) for a folder of scans"
    demo_budget_s = 300

    # ------------------------------------------------------------------ training pieces

    def model_config(self, cfg, splits) -> dict:
        kwargs = {"num_classes": NUM_CLASSES, "width": cfg.width}
        if cfg.model in ABLATION_MODELS:
            kwargs["block"] = cfg.block or "ISK"
        return kwargs

    def datasets(self, cfg, run_dir, log) -> Splits:
        """Training scans (augmented) and the validation range images; class weights from the
        training labels; the warm-up and per-epoch decay set in steps (this mutates ``cfg.train``)."""
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
        log(f"{len(train_records)} training scans ({steps_per_epoch} steps per epoch), {len(val_records)} "
            f"validation scans, {projection.height}x{projection.width} range images")
        return Splits(train_set, val_samples, info={"class_weights": weights})

    def step(self, cfg, splits):
        return segmentation_loss(splits.info["class_weights"])

    def validator(self, cfg, splits):
        if not splits.val:
            return None

        def validate(model):
            scores = range_image_scores(model, splits.val)
            return {"val_miou": scores.miou, "val_miou_present": scores.miou_present, "val_acc": scores.accuracy}

        return validate

    # ------------------------------------------------------------------ using trained models

    def load_foreign(self, spec: str, log) -> LoadedRun | None:
        """``official:<folder>``: an official SqueezeSegV3 log folder (:mod:`.official`)."""
        if not spec.startswith(OFFICIAL_PREFIX):
            return None
        return load_official(spec[len(OFFICIAL_PREFIX):], source=spec)

    def attach(self, loaded: LoadedRun, options, log) -> LoadedRun:
        """The range-image projection and kNN settings the model was trained with."""
        knn = loaded.config.knn
        if getattr(options, "knn_mode", None):
            knn = dataclasses.replace(knn, mode=options.knn_mode)
        loaded.extras.update(projection=loaded.config.projection(), knn=knn)
        return loaded

    def evaluate(self, options, log) -> Evaluation:
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        records = find_scans(options.data, sequences=options.sequences, require_labels=True,
                             follow_symlinks=options.follow_symlinks)
        if options.max_scans:
            records = records[:options.max_scans]
        result = evaluate_scans(loaded, records, knn=not options.no_knn, log=log)
        projection = loaded.extras["projection"]
        metrics = {**scores_json(result, CLASS_NAMES), "model": str(options.model), "data": str(options.data),
                   "projection": {"height": projection.height, "width": projection.width}}
        report = lidar_report(result, title=f"pixelwise lidar eval: {loaded.model_name}",
                              description=f"{result['scans']} scan(s) from {options.data}, {result['points']} points")
        old = metrics["rows_and_columns"]
        lines = [f"{key:10s} mIoU {100 * s['miou']:.1f} (present classes {100 * s['miou_present']:.1f}) "
                 f"accuracy {100 * s['accuracy']:.1f}; papers' formula mIoU {100 * old[key]['miou']:.1f}"
                 for key in ("point", "point_knn", "pixel") if (s := metrics.get(key))]
        return Evaluation(metrics, report, lines)

    def predict(self, options, log) -> str:
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        records = find_scans(options.scans, follow_symlinks=options.follow_symlinks)
        written = predict_scans(loaded, records, Path(options.out), knn=not options.no_knn, png=not options.no_png,
                                ply=options.ply, log=log)
        return f"wrote {len(written)} label file(s) under {Path(options.out) / 'sequences'}"

    # ------------------------------------------------------------------ the demo part and the benchmark

    def demo(self, out, options, *, seed, quiet, log):
        scans = options.scans
        if scans is None and options.data_root and (Path(options.data_root) / "semantic-kitti").is_dir():
            scans = Path(options.data_root) / "semantic-kitti"
        return run_lidar_demo(self, out, scans=scans, budget=LidarDemoBudget(steps=options.steps), seed=seed,
                              quiet=quiet, log=log)

    def bench(self, options, log):
        return bench.run_suite(options, log)
