"""Instance grouping with hyperspherical pixel embeddings (Kong & Fowlkes 2018): the task.

A dilated residual network (:mod:`pixelwise.models.pixel_embedding`) maps each pixel to a unit
vector; training pulls pixels of one instance together and pushes different instances below the
margin (:class:`~pixelwise.losses.PixelEmbeddingLoss`), optionally through ``T`` unrolled
iterations of recurrent mean shift with the same loss after every iteration (``iterations``;
0 trains the embedding alone). A semantic head trained with cross-entropy beside it labels the
extracted instances by majority vote (Sec. 5.4).

Instances are read off the embedding by :func:`pixelwise.grouping.extract_instances` (mean shift
on the 1/8 map at several bandwidths, seeds, full-resolution assignment, proposals pooled and
de-duplicated), scored by a linear regressor on proposal features fitted on training images
after training (``scorer.json`` in the run folder, attached to the loaded run as
``extras["scorer"]``), and evaluated as object proposals (recall at IoU 0.5 and AR over
0.5:0.95 for the top k) and as instance segmentation (AP^r at 0.5).

Data is ``synthetic`` (scenes of overlapping textured shapes generated on the fly, deterministic
per index, :mod:`pixelwise.data.synthetic.instances`) or a PASCAL VOC 2012 / SBD folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ...atomic import write_text_atomic
from ...checks import check_int, parse_positive_int
from ...data.datasets.voc_instances import IGNORE_LABEL, VOC_CLASSES, VocInstances
from ...data.synthetic.instances import CLASS_NAMES, SceneConfig, SyntheticInstances
from ...data.transforms.crops import RandomScaleCrop
from ...engine import TrainResult, config_to_dict, train
from ...grouping import ProposalScorer
from ...losses import PixelEmbeddingLoss
from ...nn import RecurrentMeanShift
from ..base import Evaluation, LoadedRun, Option, Splits, Task
from ..loading import load_run
from ..registry import register_task
from .bench import OPTIONS as BENCH_OPTIONS, run_suite
from .config import InstancesConfig
from .demo import InstancesDemoBudget, run_demo
from .inference import evaluate_dataset, fit_scorer, predict_folder, upsample
from .margin import MARGIN
from .report import instances_report

__all__ = ["SCORER_FILE", "InstancesTask", "class_names", "embedding_loss", "evaluation_dataset", "instance_loss",
           "scene_config"]

SCORER_FILE = "scorer.json"


# ------------------------------------------------------------------------------------ data


def scene_config(cfg: InstancesConfig) -> SceneConfig:
    return SceneConfig(height=cfg.image_size, width=cfg.image_size, max_objects=cfg.scene_max_objects,
                       clutter=cfg.scene_clutter)


def class_names(cfg: InstancesConfig) -> tuple[str, ...]:
    """Names of the semantic classes the config's data uses (synthetic shapes or VOC)."""
    return tuple(CLASS_NAMES) if cfg.data == "synthetic" else tuple(VOC_CLASSES)


def evaluation_dataset(data: str, cfg: InstancesConfig, split: str = "val", *, follow_symlinks: bool = False):
    """The held-out synthetic scenes the model was validated on, or a VOC / SBD split."""
    if data == "synthetic":
        return SyntheticInstances(max(cfg.val_images, 1), seed=cfg.synthetic_seed + 7919, cfg=scene_config(cfg))
    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data}: no such folder")
    return VocInstances(Path(data), split, follow_symlinks=follow_symlinks)


# ------------------------------------------------------------------------------------ training


def embedding_loss(cfg: InstancesConfig) -> PixelEmbeddingLoss:
    mean_shift = RecurrentMeanShift(cfg.kappa, cfg.eta, cfg.iterations) if cfg.iterations else None
    return PixelEmbeddingLoss(alpha=cfg.alpha, max_pixels=cfg.max_pixels, ignore_index=IGNORE_LABEL,
                              mean_shift=mean_shift, loss_at_every_iteration=cfg.loss_at_every_iteration)


def instance_loss(cfg: InstancesConfig):
    """The training loss ``(model, batch) -> (loss, logs)``: the embedding loss after every
    mean-shift iteration, plus cross-entropy of the semantic head."""
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


# ------------------------------------------------------------------------------------ the task


@register_task
class InstancesTask(Task):
    name = "instances"
    summary = "instance grouping: hyperspherical pixel embeddings + recurrent mean shift"
    doc = "docs/instances.md"
    config_class = InstancesConfig
    data_sources = ("synthetic", "<VOC2012 or SBD folder>")
    eval_help = "proposal recall (AR) and AP^r; metrics.json and report.html"
    predict_help = "instance-ID PNGs, colour overlays and embedding images for images"
    demo_budget_s = 300
    train_options = (
        Option("--data", "'synthetic' (scenes generated on the fly) or a VOC2012 / SBD folder", key="data"),
        Option("--follow-symlinks", "accept symbolic links in the VOC / SBD folder that lead outside it",
               action="store_true", key="follow_symlinks"),
        Option("--iterations", "T mean-shift iterations unrolled in the loss (0 = embedding loss only)", type=int,
               key="iterations"),
        Option("--embedding-dim", "embedding dimension D", type=parse_positive_int, key="embedding_dim"),
        Option("--width", "channel multiplier of the network", type=float, key="width"),
    )
    eval_options = (
        Option("--data", "'synthetic' (held-out scenes) or a VOC2012 / SBD folder", default="synthetic"),
        Option("--split", "split of a VOC / SBD folder", default="val"),
        Option("--follow-symlinks", "accept symbolic links in the VOC / SBD folder that lead outside it",
               action="store_true"),
        Option("--max-images", "only the first N images", type=parse_positive_int),
        Option("--examples", "images shown in the report", type=int, default=6),
    )
    predict_options = (
        Option("--images", "an image file or a folder of images", required=True),
        Option("--out", "writes instances/, overlays/, embeddings/ (and semantic/)", required=True),
    )
    demo_options = (Option("--steps", "instance-embedding training steps", type=parse_positive_int,
                           default=InstancesDemoBudget.steps),)
    bench_options = BENCH_OPTIONS
    verbs = (MARGIN,)

    # ------------------------------------------------------------------ training pieces

    def model_config(self, cfg: InstancesConfig, splits: Splits) -> dict:
        num_classes = len(splits.info["class_names"]) if cfg.semantic else 0
        return {"embedding_dim": cfg.embedding_dim, "num_classes": num_classes, "width": cfg.width,
                "blocks": cfg.blocks}

    def datasets(self, cfg: InstancesConfig, run_dir: Path, log) -> Splits:
        if cfg.data == "synthetic":
            scene = scene_config(cfg)
            # A different seed stream for validation: no validation scene repeats a training scene.
            splits = Splits(SyntheticInstances(cfg.synthetic_train, seed=cfg.synthetic_seed, cfg=scene, augment=True),
                            SyntheticInstances(cfg.val_images or 32, seed=cfg.synthetic_seed + 7919, cfg=scene))
        else:
            root = Path(cfg.data)
            if not root.exists():
                raise FileNotFoundError(f"data: {root} does not exist")
            train_set = RandomScaleCrop(VocInstances(root, cfg.train_split, follow_symlinks=cfg.follow_symlinks),
                                        cfg.image_size, seed=cfg.train.seed, label_keys=("instances", "semantic"),
                                        ignore_index=IGNORE_LABEL)
            splits = Splits(train_set, VocInstances(root, cfg.val_split, follow_symlinks=cfg.follow_symlinks))
        splits.info["class_names"] = class_names(cfg)
        splits.info["val_images"] = min(len(splits.val), cfg.val_images or len(splits.val))
        log(f"{len(splits.train)} training images, {splits.info['val_images']} validation images, "
            f"T = {cfg.iterations} mean-shift iterations in the loss")
        return splits

    def step(self, cfg: InstancesConfig, splits: Splits):
        return instance_loss(cfg)

    def validator(self, cfg: InstancesConfig, splits: Splits):
        def validate(model):
            result = evaluate_dataset(model, splits.val, cfg, max_images=splits.info["val_images"])
            keep = ("recall50@10", "ar@10", "map")
            return {f"val_{k.replace('@', '_at_')}": result["summary"][k] for k in keep}

        return validate

    def train(self, cfg: InstancesConfig, run_dir: Path, *, resume: bool = False, log=print) -> TrainResult:
        """The default training (data, the model from ``cfg.train.seed``, the engine's loop), then
        the proposal scorer fitted on ``cfg.scorer_images`` training images with the trained model."""
        cfg.check()
        run_dir = Path(run_dir)
        splits = self.datasets(cfg, run_dir, log)
        torch.manual_seed(cfg.train.seed)
        model = self.build_model(cfg, splits)
        result = train(model, splits.train, self.step(cfg, splits), cfg.train, run_dir, model_name=cfg.model,
                       model_config=self.model_config(cfg, splits), validate=self.validator(cfg, splits),
                       full_config=config_to_dict(cfg), resume=resume, log=log)
        # Rank 0 only: under torchrun every rank returns here with the same weights.
        if not result.interrupted and int(os.environ.get("RANK", "0")) == 0 and cfg.scorer_images:
            scorer = fit_scorer(model, splits.train, cfg, cfg.scorer_images)
            write_text_atomic(run_dir / SCORER_FILE, json.dumps(scorer.to_dict(), indent=2))
            log(f"proposal scorer fitted on {cfg.scorer_images} training images -> {run_dir / SCORER_FILE}")
        return result

    # ------------------------------------------------------------------ using trained models

    def attach(self, loaded: LoadedRun, options, log) -> LoadedRun:
        """``extras["scorer"]``: the run's fitted :class:`~pixelwise.grouping.ProposalScorer` (None
        without ``scorer.json``: extraction's default scores); ``extras["class_names"]``."""
        path = loaded.run_dir / SCORER_FILE if loaded.run_dir is not None else None
        loaded.extras["scorer"] = (ProposalScorer.from_dict(json.loads(path.read_text()))
                                   if path is not None and path.exists() else None)
        loaded.extras["class_names"] = class_names(loaded.config)
        return loaded

    def evaluate(self, options, log) -> Evaluation:
        examples = check_int(options.examples, "--examples", min=0)
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        cfg, scorer, names = loaded.config, loaded.extras["scorer"], loaded.extras["class_names"]
        dataset = evaluation_dataset(options.data, cfg, options.split, follow_symlinks=options.follow_symlinks)
        result = evaluate_dataset(loaded.model, dataset, cfg, scorer=scorer, max_images=options.max_images or 0,
                                  keep_examples=examples, log=log)
        ap = dict(result["ap"])
        ap["ap_per_class"] = {names[int(c)] if int(c) < len(names) else str(c): v
                              for c, v in ap.get("ap_per_class", {}).items()}
        s = result["summary"]
        metrics = {"model": str(options.model), "data": str(options.data),
                   "split": options.split if options.data != "synthetic" else None, "summary": s, "ap": ap,
                   "scorer": "fitted" if scorer is not None else "default"}
        report = instances_report(result, ap["ap_per_class"], primary_kappa=cfg.extraction.kappas[0],
                                  title="pixelwise instances eval",
                                  description=f"{s['images']} image(s) from {options.data}")
        lines = [f"{s['images']} images, {s['mean_proposals']:.1f} proposals per image",
                 *(f"top {k:3d}: recall at IoU 0.5 {s[f'recall50@{k}']:.3f}, AR 0.5:0.95 {s[f'ar@{k}']:.3f}"
                   for k in (10, 60)),
                 f"AP^r at IoU 0.5: {100 * s['map']:.1f}"]
        return Evaluation(metrics, report, lines)

    def predict(self, options, log) -> str:
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        written = predict_folder(loaded, Path(options.images), Path(options.out), log=log)
        return f"wrote {len(written)} instance map(s) under {Path(options.out) / 'instances'}"

    # ------------------------------------------------------------------ the product's main job and benchmarks

    def demo(self, out: Path, options, *, seed: int, quiet: bool, log):
        return run_demo(self, out, budget=InstancesDemoBudget(steps=options.steps), seed=seed, quiet=quiet, log=log)

    def bench(self, options, log):
        return run_suite(options, log)
