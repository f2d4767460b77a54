"""Semantic segmentation with PAC-CRF and PAC hot-swap (Su et al. 2019, Secs. 5-6): train, evaluate, predict.

A dilated residual FCN (:mod:`pixelwise.models.segmentation`) gives per-pixel unaries; on top:

* ``crf="pac"`` / ``"pac-loose"``: a learnable :class:`~pixelwise.nn.PacCRF` trained as in the
  paper -- first alone on the frozen network (``crf_stage``), then jointly with it
  (``joint_stage``, lower rate);
* ``crf="dense"``: the fully connected CRF (:class:`~pixelwise.nn.DenseCRF`, permutohedral) whose
  five parameters are grid-searched on the validation images after training
  (``dense_crf.json`` in the run folder) -- it has nothing to learn by gradient;
* ``hot_swap=True``: chosen convolutions become PAC layers guided by the stem features
  (:func:`~pixelwise.nn.convert_to_pac`) and the network is fine-tuned (``joint_stage``).

``init`` starts from a trained run (normally the unaries-only network), as the paper fine-tunes a
trained FCN; without it the backbone is trained first (``train``). Every stage is an engine run
in its own sub-folder (``unaries/``, ``crf/``, ``joint/``) with checkpoints, so ``--resume``
continues at the interrupted stage; the final weights are copied to the run folder.

Evaluation reports, for the unaries and for each CRF applied to them: mIoU (over the classes
present in the ground truth), pixel accuracy, per-class IoU and the mIoU inside a band of
``band_width`` pixels around ground-truth boundaries (the "trimap" score, where CRFs act).
:func:`run_evaluation` and :func:`predict_folder` apply the CRF the run was trained with, or the
one chosen at load time (:func:`load_segment_model`), e.g. the dense CRF on a PAC-CRF run's unaries.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import write_text_atomic
from ..engine import (OptimizerConfig, ScheduleConfig, TrainConfig, config_to_dict, latest_checkpoint,
                      load_checkpoint, save_checkpoint, train)
from ..metrics.segmentation import boundary_band, confusion_matrix, segmentation_scores
from ..models import create_model
from ..nn.dense_crf import DenseCRF, DenseCRFParams

MODELS = ("seg_fcn",)
IGNORE_LABEL = 255
CRF_CHOICES = ("none", "pac", "pac-loose", "dense")
DENSE_FILE = "dense_crf.json"
SYNTHETIC_VAL_SEED, SYNTHETIC_TEST_SEED = 7919, 104729  # offsets: no held-out scene repeats a training one


def _default_training() -> TrainConfig:
    return TrainConfig(steps=2000, batch_size=8, val_every=500, ckpt_every=250, grad_clip=10.0,
                       optimizer=OptimizerConfig(name="adam", lr=1e-3, weight_decay=1e-5),
                       schedule=ScheduleConfig(milestones=[1600], gamma=0.1))


@dataclass
class StageConfig:
    """Steps and learning rate of one fine-tuning stage (batch size and the rest come from ``train``)."""

    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 0     # 0 = train.batch_size

    def __post_init__(self) -> None:
        if self.steps < 0 or not self.lr > 0 or self.batch_size < 0:
            raise ValueError(f"stage: steps and batch_size must be >= 0 and lr > 0, got {self.steps}, "
                             f"{self.lr}, {self.batch_size}")


@dataclass
class SegmentConfig:
    model: str = "seg_fcn"
    width: float = 0.5
    blocks: int = 2
    data: str = "synthetic"          # "synthetic", a VOC2012 / SBD folder, or cityscapes:<folder>
    train_split: str = "train"
    val_split: str = "val"
    image_size: int = 192            # synthetic scene side; training crop side for real data
    synthetic_train: int = 20000
    synthetic_seed: int = 0
    val_images: int = 48             # validation (and dense-CRF grid search) images; 0 = all
    test_images: int = 100           # held-out synthetic test scenes for `segment eval`
    init: str = ""                   # a trained run folder / checkpoint to start from ("" = train the backbone)
    crf: str = "none"                # none | pac | pac-loose | dense
    crf_kernels: list[list[int]] = field(default_factory=lambda: [[5, 32]])  # [kernel_size, dilation] each
    crf_compat: str = "4d"           # 4d | 2d | potts
    crf_steps: int = 5               # mean-field steps
    crf_blur: int = 1
    hot_swap: bool = False
    hot_swap_layers: list[str] = field(default_factory=list)  # [] = last conv of stages 2-4
    hot_swap_guide: str = "backbone.stem"
    hot_swap_scale: float = 1e-4
    unary_weight: float = 1.0        # cross-entropy on the unaries beside the CRF loss (keeps them from drifting)
    band_width: int = 5              # pixels each side of a boundary in the trimap score
    # CRF alone: its weights start at 1/24 per tap and must grow ~10x, hence a rate above the network's
    crf_stage: StageConfig = field(default_factory=lambda: StageConfig(steps=250, lr=5e-3, batch_size=4))
    joint_stage: StageConfig = field(default_factory=lambda: StageConfig(steps=250, lr=1e-4, batch_size=4))
    # grid searched for crf=dense (Kraehenbuehl & Koltun search w1, theta_alpha, theta_beta the same way)
    dense_grid: dict = field(default_factory=lambda: {
        "appearance_weight": [3.0, 10.0, 20.0, 40.0], "appearance_xy": [20.0, 50.0, 100.0],
        "appearance_rgb": [5.0, 10.0, 20.0]})
    train: TrainConfig = field(default_factory=_default_training)

    def check(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {', '.join(MODELS)}, got {self.model!r}")
        if self.crf not in CRF_CHOICES:
            raise ValueError(f"crf: expected one of {', '.join(CRF_CHOICES)}, got {self.crf!r}")
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size: must be a multiple of 8 and >= 32, got {self.image_size}")
        if self.crf in ("pac", "pac-loose") and self.crf_steps < 1:
            raise ValueError(f"crf_steps: a PAC-CRF needs at least one mean-field step, got {self.crf_steps}")
        for k in self.crf_kernels:
            if len(k) != 2:
                raise ValueError(f"crf_kernels: each entry must be [kernel_size, dilation], got {k!r}")


# ------------------------------------------------------------------------------------ data


@dataclass
class DataSplits:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    class_names: tuple[str, ...]


def _real_dataset(data: str, split: str):
    if data.startswith("cityscapes:"):
        from ..data.cityscapes import CityscapesSegmentation

        root = Path(data.split(":", 1)[1])
        if not root.exists():
            raise FileNotFoundError(f"data: {root} does not exist")
        return CityscapesSegmentation(root, split)
    from ..data.voc_segmentation import VocSegmentation

    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"data: {root} does not exist")
    return VocSegmentation(root, split)


def class_names(data: str) -> tuple[str, ...]:
    if data == "synthetic":
        from ..data.synthetic_segmentation import CLASS_NAMES
        return tuple(CLASS_NAMES)
    if data.startswith("cityscapes:"):
        from ..data.cityscapes import CITYSCAPES_CLASSES
        return tuple(CITYSCAPES_CLASSES)
    from ..data.voc_segmentation import VOC_CLASSES
    return tuple(VOC_CLASSES)


def palette(data: str) -> np.ndarray:
    """Colours for the label PNGs: the VOC palette, or Cityscapes' for Cityscapes."""
    if data.startswith("cityscapes:"):
        from ..data.cityscapes import CITYSCAPES_PALETTE
        return CITYSCAPES_PALETTE
    from ..data.voc_instances import VOC_PALETTE
    return VOC_PALETTE


def _synthetic(cfg: SegmentConfig, count: int, seed_offset: int, augment: bool = False):
    from ..data.synthetic_segmentation import SegSceneConfig, SyntheticSegmentation

    scene = SegSceneConfig(height=cfg.image_size, width=cfg.image_size)
    return SyntheticSegmentation(count, seed=cfg.synthetic_seed + seed_offset, cfg=scene, augment=augment)


def load_splits(cfg: SegmentConfig) -> DataSplits:
    if cfg.data == "synthetic":
        return DataSplits(_synthetic(cfg, cfg.synthetic_train, 0, augment=True),
                          _synthetic(cfg, cfg.val_images or 48, SYNTHETIC_VAL_SEED), class_names(cfg.data))
    from ..data.crops import RandomScaleCrop

    train_set = RandomScaleCrop(_real_dataset(cfg.data, cfg.train_split), cfg.image_size, seed=cfg.train.seed,
                                label_keys=("label",), ignore_index=IGNORE_LABEL)
    return DataSplits(train_set, _real_dataset(cfg.data, cfg.val_split), class_names(cfg.data))


def evaluation_dataset(cfg: SegmentConfig, data: str, split: str = "test"):
    """Held-out data: synthetic ``val`` (the validation / grid-search scenes) or ``test`` scenes,
    or a split of a real dataset folder."""
    if data == "synthetic":
        if split not in ("val", "test"):
            raise ValueError(f"--split for synthetic data must be 'val' or 'test', got {split!r}")
        if split == "val":
            return _synthetic(cfg, cfg.val_images or 48, SYNTHETIC_VAL_SEED)
        return _synthetic(cfg, cfg.test_images or 100, SYNTHETIC_TEST_SEED)
    return _real_dataset(data, split)


# ------------------------------------------------------------------------------------ model


def model_config(cfg: SegmentConfig, num_classes: int) -> dict:
    mc = {"num_classes": num_classes, "width": cfg.width, "blocks": cfg.blocks}
    if cfg.crf in ("pac", "pac-loose"):
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


# ------------------------------------------------------------------------------------ training


@dataclass
class Stage:
    name: str
    train: TrainConfig
    freeze_backbone: bool


def plan_stages(cfg: SegmentConfig) -> list[Stage]:
    """The training stages the config asks for, in order."""
    stages = []
    if not cfg.init:
        stages.append(Stage("unaries", cfg.train, False))
    learned_crf = cfg.crf in ("pac", "pac-loose")

    def staged(s: StageConfig) -> TrainConfig:
        opt = replace(cfg.train.optimizer, lr=s.lr)
        return replace(cfg.train, steps=s.steps, batch_size=s.batch_size or cfg.train.batch_size, optimizer=opt,
                       schedule=ScheduleConfig(), val_every=0, ckpt_every=min(cfg.train.ckpt_every or 100, 100))

    if learned_crf and cfg.crf_stage.steps:
        stages.append(Stage("crf", staged(cfg.crf_stage), True))
    # Fine-tuning: the learned CRF or hot-swapped layers with the network, or (crf none) the plain
    # network for as many steps -- the control that shows what the extra training alone gives.
    # The dense CRF learns nothing by gradient: it is grid-searched on the init network as it is.
    if (learned_crf or cfg.hot_swap or (cfg.init and cfg.crf == "none")) and cfg.joint_stage.steps:
        stages.append(Stage("joint", staged(cfg.joint_stage), False))
    if not stages and cfg.crf != "dense":
        raise ValueError("nothing to train: with init, crf=none and no hot_swap, set joint_stage.steps to "
                         "fine-tune, or evaluate the init run directly")
    return stages


def segmentation_loss(cfg: SegmentConfig, use_crf: bool):
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


def _copy_final(stage_dir: Path, run_dir: Path) -> None:
    for suffix in (".safetensors", ".json"):  # tensors first: a model.json means the pair is complete
        tmp = run_dir / f".model{suffix}.tmp"
        shutil.copyfile(stage_dir / f"model{suffix}", tmp)
        tmp.replace(run_dir / f"model{suffix}")


def train_segmentation(cfg: SegmentConfig, run_dir: Path, *, resume: bool = False, log=print):
    """Train the stages of ``cfg`` into ``run_dir``; grid-search the dense CRF when ``crf="dense"``."""
    from ..engine import load_weights

    cfg.check()
    run_dir = Path(run_dir)
    splits = load_splits(cfg)
    names = splits.class_names
    mc = model_config(cfg, len(names))
    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model, **mc)
    if cfg.init:
        fresh = load_init(model, cfg.init, len(names))
        log(f"initialised from {cfg.init}" + (f" ({len(fresh)} new CRF tensors)" if fresh else ""))
    val_count = min(len(splits.val), cfg.val_images or len(splits.val))

    def validate(m):
        s = evaluate_dataset(m, splits.val, len(names), max_images=val_count, band_width=cfg.band_width)
        return {f"val_miou_{k}": v["miou"] for k, v in s["methods"].items()}

    result = None
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = plan_stages(cfg)
    for stage in stages:
        stage_dir = run_dir / stage.name
        if (stage_dir / "model.json").exists():
            load_weights(model, stage_dir / "model", strict=True)
            log(f"stage {stage.name}: already trained, weights loaded")
            continue
        if model.crf is not None:
            model.freeze_backbone(stage.freeze_backbone)
        has_ckpt = latest_checkpoint(stage_dir) is not None
        log(f"stage {stage.name}: {stage.train.steps} steps, lr {stage.train.optimizer.lr:g}"
            + (", backbone frozen" if stage.freeze_backbone else ""))
        result = train(model, splits.train, segmentation_loss(cfg, stage.name != "unaries"), stage.train, stage_dir,
                       model_name=cfg.model, model_config=mc, validate=validate, full_config=config_to_dict(cfg),
                       resume=resume and has_ckpt, log=log)
        if result.interrupted:
            return result
    if model.crf is not None:
        model.freeze_backbone(False)
    # The grid search comes before the final model files: a model.json in the run folder then
    # means the run is complete (the demo reuses such folders), never "network without its CRF".
    if cfg.crf == "dense":
        params, table = search_dense_crf(model, splits.val, cfg, max_images=val_count, log=log)
        write_text_atomic(run_dir / DENSE_FILE, json.dumps({"params": config_to_dict(params), "grid": table},
                                                           indent=2))
        log(f"dense CRF parameters (grid search on {val_count} validation images) -> {run_dir / DENSE_FILE}")
    if stages:
        _copy_final(run_dir / stages[-1].name, run_dir)
    else:  # dense CRF on the init network as it is: the run keeps a copy of that network
        save_checkpoint(run_dir / "model", model, model_name=cfg.model, model_config=mc, config=config_to_dict(cfg))
    return result


# ------------------------------------------------------------------------------------ inference


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def predict_image(model, image: torch.Tensor, dense=None) -> dict:
    """Class maps of one ``(3, H, W)`` image: ``unaries``, and ``pac`` / ``dense`` when available,
    with the milliseconds each took (``network``, ``pac_crf``, ``dense_crf``)."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be RGB (3, H, W), got shape {tuple(image.shape)}")
    device = next(model.parameters()).device
    x = image[None].to(device)
    _sync(device)
    t0 = time.perf_counter()
    logits = model.unaries(x)
    _sync(device)  # CUDA runs asynchronously: without this the network's time lands in the CRF's
    t1 = time.perf_counter()
    out = {"unaries": logits.argmax(1)[0].cpu(), "ms": {"network": 1e3 * (t1 - t0)}}
    if model.crf is not None:
        t1 = time.perf_counter()
        out["pac"] = model.crf(logits, x).argmax(1)[0].cpu()
        out["ms"]["pac_crf"] = 1e3 * (time.perf_counter() - t1)
    if dense is not None:
        t2 = time.perf_counter()
        out["dense"] = dense(logits.cpu(), image[None].cpu()).argmax(1)[0]
        out["ms"]["dense_crf"] = 1e3 * (time.perf_counter() - t2)
    return out


class _Scores:
    """Confusion matrices over all pixels and over the boundary band, for one method."""

    def __init__(self, n: int) -> None:
        self.all = torch.zeros(n, n, dtype=torch.long)
        self.band = torch.zeros(n, n, dtype=torch.long)

    def update(self, pred: torch.Tensor, label: torch.Tensor, band: torch.Tensor, n: int) -> None:
        valid = label != IGNORE_LABEL
        self.all += confusion_matrix(pred[valid], label[valid], n)
        self.band += confusion_matrix(pred[band & valid], label[band & valid], n)

    def result(self, names) -> dict:
        s, b = segmentation_scores(self.all, ignore=()), segmentation_scores(self.band, ignore=())
        per_class = {names[i]: (None if not s.present[i] else float(s.iou[i])) for i in range(len(names))}
        def number(x):  # NaN (nothing to score, e.g. no boundary pixel) -> None: valid JSON
            return None if math.isnan(float(x)) else float(x)

        return {"miou": number(s.miou_present), "pixel_accuracy": number(s.accuracy),
                "band_miou": number(b.miou_present), "per_class_iou": per_class}


def evaluate_dataset(model, dataset, num_classes: int, *, dense=None, max_images: int = 0, band_width: int = 5,
                     names=None, keep_examples: int = 0, log=None) -> dict:
    """mIoU, accuracy, per-class IoU and boundary-band mIoU of the unaries and each CRF."""
    was_training = model.training
    model.eval()
    names = names or [str(i) for i in range(num_classes)]
    scores: dict[str, _Scores] = {}
    times: dict[str, list[float]] = {}
    examples = []
    count = min(len(dataset), max_images or len(dataset))
    for i in range(count):
        item = dataset[i]
        label = item["label"]
        valid = label[label != IGNORE_LABEL]
        if valid.numel() and int(valid.max()) >= num_classes:
            raise ValueError(f"image {item.get('name', i)}: labels up to {int(valid.max())}, but the model has "
                             f"{num_classes} classes (wrong checkpoint for this data?)")
        pred = predict_image(model, item["image"], dense)
        band = torch.as_tensor(boundary_band(label.numpy(), band_width, IGNORE_LABEL))
        for method in ("unaries", "pac", "dense"):
            if method in pred:
                scores.setdefault(method, _Scores(num_classes)).update(pred[method], label, band, num_classes)
        for k, v in pred["ms"].items():
            times.setdefault(k, []).append(v)
        if i < keep_examples:
            examples.append({"name": item.get("name", f"{i:04d}"), "image": item["image"], "label": label,
                             **{m: pred[m] for m in ("unaries", "pac", "dense") if m in pred}})
        if log:
            log(f"image {i + 1}/{count}")
    model.train(was_training)
    return {"images": count, "methods": {k: v.result(names) for k, v in scores.items()},
            "median_ms": {k: float(np.median(v)) for k, v in times.items()}, "examples": examples}


def search_dense_crf(model, dataset, cfg: SegmentConfig, *, max_images: int = 0, log=print):
    """Grid-search the dense CRF's parameters on the network's unaries for ``dataset``."""
    from ..nn.dense_crf import grid_search_dense_crf

    was_training = model.training
    model.eval()
    unaries, images, labels = [], [], []
    count = min(len(dataset), max_images or len(dataset))
    with torch.no_grad():
        for i in range(count):
            item = dataset[i]
            unaries.append(model.unaries(item["image"][None].to(next(model.parameters()).device))[0].cpu())
            images.append(item["image"])
            labels.append(item["label"])
    model.train(was_training)
    grid = {k: list(v) for k, v in cfg.dense_grid.items()}
    best, table = grid_search_dense_crf(unaries, images, labels, grid, base=DenseCRFParams(steps=cfg.crf_steps),
                                        ignore_index=IGNORE_LABEL)
    log(f"dense CRF grid search: {len(table)} settings, best mIoU {table[0]['miou']:.4f}")
    return best, table


# ------------------------------------------------------------------------------------ trained models


@dataclass
class LoadedSegmenter:
    """A trained network and what is applied to its unaries at evaluation and prediction time.

    ``method`` names the map that prediction writes: ``"dense"`` when ``dense`` is set, else
    ``"pac"`` when the network has a PAC-CRF (and ``crf="none"`` did not ask for the unaries),
    else ``"unaries"``. Evaluation reports the unaries and every CRF computed beside them: a
    PAC-CRF is part of the network, so it runs (and is scored as ``pac``) even with ``crf="none"``.
    """

    model: torch.nn.Module
    cfg: SegmentConfig
    dense: DenseCRF | None
    class_names: tuple[str, ...]
    palette: np.ndarray
    method: str


def dense_params(run_dir: Path, log=print) -> DenseCRFParams:
    """The dense CRF parameters grid-searched for a run (its ``dense_crf.json``); without that
    file, :class:`DenseCRFParams` defaults (DeepLab's VOC setting, not tuned for these unaries)."""
    path = Path(run_dir) / DENSE_FILE
    if not path.exists():
        log(f"warning: no {path} (the run did not grid-search a dense CRF); using the default dense CRF "
            f"parameters, not tuned for this network")
        return DenseCRFParams()
    try:
        return DenseCRFParams(**json.loads(path.read_text())["params"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a dense CRF parameter file ({exc})") from None


def load_segment_model(spec: str | Path, device: str = "cpu", crf: str | None = None, *,
                       log=print) -> LoadedSegmenter:
    """A trained network from a run folder (or checkpoint) with its settings, and the CRF to apply.

    ``crf``: ``None`` applies what the run was trained with; ``"none"`` the unaries alone (a
    trained PAC-CRF still runs, see :class:`LoadedSegmenter`); ``"pac"`` / ``"pac-loose"`` the
    network's own PAC-CRF (an error when it has none, or the other kind); ``"dense"`` the fully
    connected CRF with the run's grid-searched parameters (:func:`dense_params`).
    """
    from ..engine import config_from_dict, load_trained_model

    if crf is not None and crf not in CRF_CHOICES:
        raise ValueError(f"--crf: expected one of {', '.join(CRF_CHOICES)}, got {crf!r}")
    run_dir = Path(spec) if Path(spec).is_dir() else Path(spec).parent
    model, ckpt = load_trained_model(spec, create_model, MODELS)
    saved = ckpt.meta.get("config") or {}
    cfg = config_from_dict(SegmentConfig, saved, source=f"--model {spec}") if saved else SegmentConfig()
    chosen = cfg.crf if crf is None else crf
    if chosen in ("pac", "pac-loose"):
        if model.crf is None:
            raise ValueError(f"--crf {chosen}: {spec} was trained without a PAC-CRF")
        if model.crf.loose != (chosen == "pac-loose"):
            trained = "pac-loose" if model.crf.loose else "pac"
            raise ValueError(f"--crf {chosen}: {spec} was trained with a {trained} CRF; use --crf {trained}")
    dense = DenseCRF(dense_params(run_dir, log)) if chosen == "dense" else None
    method = "dense" if dense is not None else "pac" if model.crf is not None and crf != "none" else "unaries"
    return LoadedSegmenter(model.to(device).eval(), cfg, dense, class_names(cfg.data), palette(cfg.data), method)


def run_evaluation(model_spec: str | Path, data: str, out: Path, *, split: str = "test", crf: str | None = None,
                   max_images: int = 0, examples: int = 6, device: str = "cpu", log=print) -> tuple[dict, Path]:
    """Evaluate a trained network (unaries and CRFs); write ``out/metrics.json`` and ``out/report.html``."""
    from .segment_report import write_segment_report

    loaded = load_segment_model(model_spec, device, crf, log=log)
    names = class_names(data)
    n = loaded.model.num_classes
    if len(names) != n:
        raise ValueError(f"--data {data}: has {len(names)} classes, but --model {model_spec} was trained for {n} "
                         f"classes (on {loaded.cfg.data} data)")
    dataset = evaluation_dataset(loaded.cfg, data, split)
    result = evaluate_dataset(loaded.model, dataset, n, dense=loaded.dense, max_images=max_images,
                              band_width=loaded.cfg.band_width, names=names, keep_examples=examples, log=log)
    summary = {"model": str(model_spec), "data": str(data), "split": split, "images": result["images"],
               "methods": result["methods"], "median_ms": result["median_ms"], "band_width": loaded.cfg.band_width,
               "dense_crf_params": config_to_dict(loaded.dense.params) if loaded.dense is not None else None}
    out = Path(out)
    write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2))
    report = write_segment_report(out / "report.html", result, names, palette(data), title="pixelwise segment eval",
                                  description=f"{result['images']} image(s) from {data} ({split}), model {model_spec}, "
                                              f"boundary band {loaded.cfg.band_width} px each side")
    return summary, report


def _image_files(images: Path) -> list[Path]:
    from .instances import IMAGE_SUFFIXES

    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"--images {images}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if images.is_file():
        return [images]
    raise FileNotFoundError(f"--images {images}: no such file or folder")


def predict_folder(loaded: LoadedSegmenter, images: Path, out: Path, *, log=print) -> list[Path]:
    """Class maps of ``loaded.method`` for an image file or a folder of images.

    Writes ``labels/<stem>.png`` (palette PNG of class ids, the VOC ``SegmentationClass`` format),
    ``colour/<stem>.png`` (the class colours as RGB) and ``overlays/<stem>.png`` (the image
    blended half and half with them). Images are read by :func:`~pixelwise.data.formats.read_rgb`:
    grayscale (8- or 16-bit) is repeated over three channels, alpha is dropped, a palette is
    expanded; an unreadable file stops with an error naming it.
    """
    from ..data.formats import read_rgb, write_png
    from ..data.voc_instances import write_palette_png
    from .segment_report import colour_labels, overlay

    out = Path(out)
    written = []
    for path in _image_files(Path(images)):
        rgb = read_rgb(path)
        pred = predict_image(loaded.model, torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), loaded.dense)
        labels = pred[loaded.method].numpy().astype(np.uint8)
        target = out / "labels" / f"{path.stem}.png"
        write_palette_png(target, labels, loaded.palette)
        colours = colour_labels(labels, loaded.palette)
        write_png(out / "colour" / f"{path.stem}.png", colours)
        write_png(out / "overlays" / f"{path.stem}.png", overlay(rgb, colours))
        written.append(target)
        ms = ", ".join(f"{k} {v:.0f} ms" for k, v in pred["ms"].items())
        log(f"{path.name}: {loaded.method}, {ms} -> {target}")
    return written
