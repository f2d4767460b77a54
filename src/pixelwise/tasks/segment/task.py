"""Semantic segmentation with PAC-CRF and PAC hot-swap (Su et al. 2019, Secs. 5-6): the task.

A dilated residual FCN (:mod:`pixelwise.models.segmentation`) gives per-pixel unaries; on top:

* ``crf="pac"`` / ``"pac-loose"``: a learnable :class:`~pixelwise.nn.PacCRF` trained as in the
  paper -- first alone on the frozen network (``crf_stage``), then jointly with it
  (``joint_stage``, lower rate);
* ``crf="dense"``: the fully connected CRF (:class:`~pixelwise.nn.DenseCRF`, permutohedral) whose
  five parameters are grid-searched on the validation images after training
  (``dense_crf.json`` in the run folder, :mod:`.dense_search`) -- it has nothing to learn by gradient;
* ``hot_swap=True``: chosen convolutions become PAC layers guided by the stem features
  (:func:`~pixelwise.nn.convert_to_pac`) and the network is fine-tuned (``joint_stage``).

``init`` starts from a trained run (normally the unaries-only network), as the paper fine-tunes a
trained FCN; without it the backbone is trained first (``unaries``). Every stage is an engine run
in its own sub-folder (``unaries/``, ``crf/``, ``joint/``; :func:`pixelwise.engine.train_stages`)
with checkpoints, so ``--resume`` continues at the interrupted stage; the final weights are
published to the run folder.

Evaluation reports, for the unaries and for each CRF applied to them: mIoU (over the classes
present in the ground truth), pixel accuracy, per-class IoU and the mIoU inside a band of
``band_width`` pixels around ground-truth boundaries (the "trimap" score, where CRFs act).
Evaluation and prediction apply the CRF the run was trained with, or the one chosen with
``--crf`` (e.g. the dense CRF on a PAC-CRF run's unaries): :meth:`SegmentTask.attach`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ...checks import check_choice, parse_positive_int
from ...engine import (ScheduleConfig, Stage, TrainConfig, TrainResult, config_to_dict, load_checkpoint,
                       publish_model, save_checkpoint, train_stages)
from ...nn.dense_crf import DenseCRF
from ..base import DemoResult, Evaluation, LoadedRun, Option, Splits, Task
from ..loading import load_run
from ..registry import register_task
from .bench import SegmentReport
from .bench import run as run_bench
from .config import COMPAT_CHOICES, CRF_CHOICES, IGNORE_LABEL, LEARNED_CRFS, MODELS, SegmentConfig, StageConfig
from .data import class_names, load_splits, palette
from .demo import SegmentDemoBudget, run_demo
from .dense_search import read_dense_params, search_dense_crf, write_dense_params
from .inference import evaluate_dataset, evaluate_run, predict_folder, summary_lines

__all__ = ["CRF_FROZEN", "SegmentTask", "load_init", "network_config", "parse_crf_kernels", "plan_stages",
           "segmentation_loss"]

CRF_HELP = "none (unaries only), pac / pac-loose (a learned PAC-CRF), dense (fully connected CRF)"
CRF_FROZEN = ("backbone", "classifier")  # every parameter outside the CRF: the CRF stage trains it alone


def parse_crf_kernels(text: str) -> list[list[int]]:
    """``"5:32"`` or ``"5:16,5:64"`` -> ``[[5, 32]]`` / ``[[5, 16], [5, 64]]``: kernel_size:dilation pairs."""
    try:
        pairs = [[int(v) for v in item.split(":")] for item in text.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or p[0] < 3 or p[0] % 2 == 0 or p[1] < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"expected kernel_size:dilation pairs separated by commas, kernel_size odd "
                                         f">= 3 and dilation >= 1, e.g. 5:32 or 5:16,5:64; got {text!r}")
    return pairs


# ------------------------------------------------------------------------------------ model and training


def network_config(cfg: SegmentConfig, num_classes: int) -> dict:
    """Keyword arguments of ``create_model("seg_fcn", ...)`` for ``cfg``."""
    mc = {"num_classes": num_classes, "width": cfg.width, "blocks": cfg.blocks}
    if cfg.crf in LEARNED_CRFS:
        mc["crf"] = {"kernels": [list(map(int, k)) for k in cfg.crf_kernels], "steps": cfg.crf_steps,
                     "compat": cfg.crf_compat, "blur": cfg.crf_blur, "loose": cfg.crf == "pac-loose"}
    if cfg.hot_swap:
        mc["hot_swap"] = {"layers": list(cfg.hot_swap_layers), "guide": cfg.hot_swap_guide,
                          "scale": cfg.hot_swap_scale}
    return mc


def load_init(model: torch.nn.Module, spec: str, num_classes: int) -> list[str]:
    """Copy the weights a trained run shares with ``model`` (backbone, classifier, and CRF or
    hot-swapped layers where both have them); returns the names left at their initial values."""
    path = Path(spec)
    if path.is_dir():
        if not (path / "model.json").exists():
            raise FileNotFoundError(f"init: {spec} is not a finished run folder (no model.json)")
        path = path / "model"
    elif not path.exists() and not path.with_suffix(".json").exists():
        raise FileNotFoundError(f"init: {spec}: no such run folder or checkpoint")
    ckpt = load_checkpoint(path)
    if ckpt.model_name not in MODELS:
        raise ValueError(f"init: {spec} holds a {ckpt.model_name!r}, not a segmentation network")
    theirs = ckpt.model_config.get("num_classes")
    if theirs != num_classes:
        raise ValueError(f"init: {spec} was trained for {theirs} classes, the data has {num_classes}")
    own = model.state_dict()
    shared = {k: v for k, v in ckpt.model_state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    missing = [k for k in own if k not in shared]
    backbone_missing = [k for k in missing if not k.startswith("crf.")]
    if backbone_missing:
        raise ValueError(f"init: {spec} does not match this network ({len(backbone_missing)} tensors missing, "
                         f"e.g. {backbone_missing[0]}); check width and blocks")
    return missing


def segmentation_loss(cfg: SegmentConfig, use_crf: bool):
    """Cross-entropy on the unaries; with ``use_crf`` and a CRF, the CRF's NLL plus
    ``cfg.unary_weight`` times that cross-entropy."""
    def loss_fn(model, batch):
        out = model(batch["image"])
        labels = batch["label"]
        logs = {}
        if use_crf and "log_q" in out:
            loss = F.nll_loss(out["log_q"], labels, ignore_index=IGNORE_LABEL)
            logs["crf_nll"] = loss.item()
            if cfg.unary_weight:
                ce = F.cross_entropy(out["logits"], labels, ignore_index=IGNORE_LABEL)
                loss = loss + cfg.unary_weight * ce
                logs["ce"] = ce.item()
        else:
            loss = F.cross_entropy(out["logits"], labels, ignore_index=IGNORE_LABEL)
            logs["ce"] = loss.item()
        return loss, logs

    return loss_fn


def plan_stages(cfg: SegmentConfig) -> list[Stage]:
    """The training stages the config asks for, in order: ``unaries`` (without ``init``), ``crf``
    (a learned CRF alone, the network frozen), ``joint`` (everything together)."""
    stages = []
    if not cfg.init:
        stages.append(Stage("unaries", cfg.train, segmentation_loss(cfg, False)))
    learned_crf = cfg.crf in LEARNED_CRFS

    def staged(s: StageConfig) -> TrainConfig:
        opt = replace(cfg.train.optimizer, lr=s.lr)
        return replace(cfg.train, steps=s.steps, batch_size=s.batch_size or cfg.train.batch_size, optimizer=opt,
                       schedule=ScheduleConfig(), val_every=0, ckpt_every=min(cfg.train.ckpt_every or 100, 100))

    if learned_crf and cfg.crf_stage.steps:
        stages.append(Stage("crf", staged(cfg.crf_stage), segmentation_loss(cfg, True), frozen=CRF_FROZEN))
    # Fine-tuning: the learned CRF or hot-swapped layers with the network, or (crf none) the plain
    # network for as many steps -- the control that shows what the extra training alone gives.
    # The dense CRF learns nothing by gradient: it is grid-searched on the init network as it is.
    if (learned_crf or cfg.hot_swap or (cfg.init and cfg.crf == "none")) and cfg.joint_stage.steps:
        stages.append(Stage("joint", staged(cfg.joint_stage), segmentation_loss(cfg, True)))
    if not stages and cfg.crf != "dense":
        raise ValueError("nothing to train: with init, crf=none and no hot_swap, set joint_stage.steps to "
                         "fine-tune, or evaluate the init run directly")
    return stages


def _validation_images(cfg: SegmentConfig, splits: Splits) -> int:
    return min(len(splits.val), cfg.val_images or len(splits.val))


# ------------------------------------------------------------------------------------ the task


@register_task
class SegmentTask(Task):
    name = "segment"
    summary = "semantic segmentation: PAC-CRF, PAC hot-swap, fully connected CRF"
    doc = "docs/segment.md"
    config_class = SegmentConfig
    data_sources = ("synthetic", "<VOC2012 or SBD folder>", "cityscapes:<folder>")
    train_options = (
        Option("--data", "'synthetic', a VOC2012 / SBD folder or cityscapes:<folder>", key="data"),
        Option("--crf", CRF_HELP, choices=CRF_CHOICES, key="crf"),
        Option("--kernels", "PAC-CRF pairwise kernels as kernel_size:dilation, e.g. 5:32 or 5:16,5:64",
               type=parse_crf_kernels, key="crf_kernels"),
        Option("--compat", "PAC-CRF label compatibility", choices=COMPAT_CHOICES, key="crf_compat"),
        Option("--hot-swap", "turn the last conv of stages 2-4 into PAC layers guided by the stem, then fine-tune",
               action="store_true", key="hot_swap"),
        Option("--init", "a trained run folder or checkpoint to start from (empty: train the network from "
                         "scratch first)", key="init"),
        Option("--width", "channel multiplier", type=float, key="width"),
    )
    eval_options = (
        Option("--data", "'synthetic' (held-out scenes), a VOC2012 / SBD folder or cityscapes:<folder>",
               default="synthetic"),
        Option("--split", "synthetic: val or test; a dataset folder: a split, e.g. val", default="test"),
        Option("--crf", f"CRF to apply (default: the one the run was trained with): {CRF_HELP}",
               choices=CRF_CHOICES),
        Option("--max-images", "only the first N images", type=parse_positive_int),
        Option("--examples", "images shown in the report", type=int, default=6),
        Option("--follow-symlinks", "accept dataset files and folders that are symbolic links leading outside "
                                    "the dataset folder", action="store_true"),
    )
    predict_options = (
        Option("--images", "an image file or a folder of images", required=True),
        Option("--out", "writes labels/ (palette PNGs of class ids), colour/ and overlays/", required=True),
        Option("--crf", f"CRF to apply (default: the one the run was trained with): {CRF_HELP}",
               choices=CRF_CHOICES),
    )
    demo_options = (Option("--steps", "segmentation network training steps", type=parse_positive_int,
                           default=SegmentDemoBudget.steps),)
    bench_options = (
        Option("--height", "image height (as in VOC)", type=parse_positive_int, default=375),
        Option("--width", "image width", type=parse_positive_int, default=500),
        Option("--classes", "labels (as in VOC; at least 2)", type=parse_positive_int, default=21),
        Option("--steps", "mean-field steps", type=parse_positive_int, default=5),
        Option("--repeats", "timed runs per method (median)", type=parse_positive_int, default=3),
        Option("--threads", "torch threads for PAC-CRF (pydensecrf always runs on one)", type=parse_positive_int,
               default=2),
    )
    eval_help = "mIoU, pixel accuracy, boundary-band mIoU and time per method; metrics.json and report.html"
    predict_help = "class-label PNGs, colour maps and overlays for images"
    demo_budget_s = 180

    # ------------------------------------------------------------------ training

    def model_config(self, cfg: SegmentConfig, splits: Splits) -> dict:
        return network_config(cfg, len(splits.info["class_names"]))

    def datasets(self, cfg: SegmentConfig, run_dir: Path, log) -> Splits:
        return load_splits(cfg)

    def validator(self, cfg: SegmentConfig, splits: Splits):
        names, count = splits.info["class_names"], _validation_images(cfg, splits)

        def validate(model):
            s = evaluate_dataset(model, splits.val, len(names), max_images=count, band_width=cfg.band_width)
            return {f"val_miou_{k}": v["miou"] for k, v in s["methods"].items()}

        return validate

    def train(self, cfg: SegmentConfig, run_dir: Path, *, resume: bool = False, log=print) -> TrainResult | None:
        """The stages of ``cfg`` into ``run_dir``; then, for ``crf="dense"``, the grid search
        (``dense_crf.json``), and last the run's ``model`` files."""
        cfg.check()
        run_dir = Path(run_dir)
        splits = self.datasets(cfg, run_dir, log)
        torch.manual_seed(cfg.train.seed)
        model = self.build_model(cfg, splits)
        model_config = self.model_config(cfg, splits)
        if cfg.init:
            fresh = load_init(model, cfg.init, len(splits.info["class_names"]))
            log(f"initialised from {cfg.init}" + (f" ({len(fresh)} new CRF tensors)" if fresh else ""))
        stages = plan_stages(cfg)
        result = train_stages(model, splits.train, stages, run_dir, model_name=cfg.model, model_config=model_config,
                              validate=self.validator(cfg, splits), full_config=config_to_dict(cfg), resume=resume,
                              log=log)
        if result is not None and result.interrupted:
            return result
        # The grid search comes before the final model files: a model.json in the run folder then
        # means the run is complete (the demo reuses such folders), never "network without its CRF".
        if cfg.crf == "dense":
            count = _validation_images(cfg, splits)
            params, table = search_dense_crf(model, splits.val, cfg, max_images=count, log=log)
            path = write_dense_params(run_dir, params, table)
            log(f"dense CRF parameters (grid search on {count} validation images) -> {path}")
        if stages:
            publish_model(run_dir / stages[-1].name, run_dir)
        else:  # dense CRF on the init network as it is: the run keeps a copy of that network
            save_checkpoint(run_dir / "model", model, model_name=cfg.model, model_config=model_config,
                            config=config_to_dict(cfg))
        return result

    # ------------------------------------------------------------------ using trained models

    def attach(self, loaded: LoadedRun, options: argparse.Namespace | None, log) -> LoadedRun:
        """The CRF applied to the unaries at evaluation and prediction time, in ``loaded.extras``.

        ``options.crf`` (``--crf``): None applies what the run was trained with; ``"none"`` the
        unaries alone (a trained PAC-CRF still runs and is scored as ``pac`` by evaluation, as it
        is part of the network); ``"pac"`` / ``"pac-loose"`` the network's own PAC-CRF (an error
        when it has none, or the other kind); ``"dense"`` the fully connected CRF with the run's
        grid-searched parameters (:func:`~.dense_search.read_dense_params`).

        Adds ``crf`` (the choice), ``dense`` (a :class:`DenseCRF` or None), ``method`` (the map
        prediction writes: ``"dense"`` with a dense CRF, else ``"pac"`` when the network has a
        PAC-CRF and ``crf`` is not ``"none"``, else ``"unaries"``), ``class_names`` and ``palette``.
        """
        crf = getattr(options, "crf", None)
        if crf is not None:
            check_choice(crf, "--crf", CRF_CHOICES)
        model, cfg = loaded.model, loaded.config
        chosen = cfg.crf if crf is None else crf
        if chosen in LEARNED_CRFS:
            if model.crf is None:
                raise ValueError(f"--crf {chosen}: {loaded.source} was trained without a PAC-CRF")
            if model.crf.loose != (chosen == "pac-loose"):
                trained = "pac-loose" if model.crf.loose else "pac"
                raise ValueError(f"--crf {chosen}: {loaded.source} was trained with a {trained} CRF; use --crf "
                                 f"{trained}")
        dense = DenseCRF(read_dense_params(loaded.run_dir, log)) if chosen == "dense" else None
        method = "dense" if dense is not None else "pac" if model.crf is not None and crf != "none" else "unaries"
        loaded.extras.update(crf=chosen, dense=dense, method=method, class_names=class_names(cfg.data),
                             palette=palette(cfg.data))
        return loaded

    def evaluate(self, options: argparse.Namespace, log) -> Evaluation:
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        metrics, report = evaluate_run(loaded, options.data, split=options.split, max_images=options.max_images or 0,
                                       examples=options.examples, follow_symlinks=options.follow_symlinks, log=log)
        return Evaluation(metrics, report, summary_lines(metrics))

    def predict(self, options: argparse.Namespace, log) -> str:
        loaded = load_run(options.model, task=self.name, device=options.device, options=options, log=log)
        written = predict_folder(loaded, options.images, options.out, log=log)
        return f"wrote {len(written)} label map(s) ({loaded.extras['method']}) under {Path(options.out) / 'labels'}"

    # ------------------------------------------------------------------ demo and benchmark

    def demo(self, out: Path, options: argparse.Namespace, *, seed: int, quiet: bool, log) -> DemoResult:
        return run_demo(self, out, budget=SegmentDemoBudget(steps=options.steps), seed=seed, quiet=quiet, log=log)

    def bench(self, options: argparse.Namespace, log) -> SegmentReport:
        return run_bench(height=options.height, width=options.width, classes=options.classes, steps=options.steps,
                         repeats=options.repeats, threads=options.threads, progress=log)
