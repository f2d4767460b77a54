"""Guided (joint) upsampling of depth and flow: train, evaluate, predict (Su et al. 2019, Sec. 4).

Wires the models of :mod:`pixelwise.models.upsampling`, the pairs of
:mod:`pixelwise.data.upsampling_pairs` and the shared engine. Learned models train on
procedurally generated scenes by default and are validated on held-out generated scenes; real
scenes (the Middlebury motorcycle, NYU, Sintel, user folders) are for evaluation or for training
when the user has them.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.upsampling_pairs import UpsamplingPairs, crop_to_multiple, fill_invalid, make_pair
from ..data.upsampling_sources import open_dataset
from ..engine import OptimizerConfig, ScheduleConfig, TrainConfig, load_model, save_checkpoint, train
from ..losses import masked_mse
from ..metrics import endpoint_error, mae, rmse
from ..models import create_model
from ..models.upsampling_base import KINDS, normalization_stats

LEARNED = ("pac_upsampler", "pac_upsampler_lite", "djf")
PARAMETER_FREE = ("bicubic", "bilinear", "jbu")
VALIDATION_SEED = 1_000_003  # synthetic validation scenes never coincide with training scenes


def _paper_schedule() -> TrainConfig:
    # Su et al. 2019: Adam, lr 1e-4 for 3.5k steps, 1e-5 for 1.5k, 1e-6 for 0.5k, 256x256 crops.
    return TrainConfig(steps=5500, batch_size=8, val_every=500, ckpt_every=500,
                       optimizer=OptimizerConfig(name="adam", lr=1e-4),
                       schedule=ScheduleConfig(milestones=[3500, 5000], gamma=0.1))


@dataclass
class UpsampleConfig:
    model: str = "pac_upsampler_lite"
    factor: int = 8
    kind: str = "depth"
    data: str = "synthetic"
    synthetic_length: int = 20000   # scenes per epoch when data = synthetic
    crop: int = 256
    val_size: int = 8               # held-out synthetic scenes for validation
    target_scale: float = 1000.0    # 16-bit PNG targets: value = png / target_scale
    train: TrainConfig = field(default_factory=_paper_schedule)

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected 'depth' or 'flow', got {self.kind!r}")
        if self.factor not in (2, 4, 8, 16) and self.model in LEARNED:
            raise ValueError(f"factor: the learned upsamplers support 4, 8 and 16, got {self.factor}")
        if self.crop % self.factor:
            raise ValueError(f"crop: {self.crop} is not a multiple of factor {self.factor}")


# ----------------------------------------------------------------------------------- training

def model_config(cfg: UpsampleConfig) -> dict:
    return {"factor": cfg.factor, "kind": cfg.kind}


def validation_pairs(cfg: UpsampleConfig) -> list[dict]:
    base = open_dataset("synthetic", cfg.kind, synthetic_length=cfg.val_size, synthetic_size=cfg.crop,
                        seed=VALIDATION_SEED)
    return [make_pair(base[i], cfg.factor, cfg.kind) for i in range(len(base))]


def upsampling_loss(model, batch):
    pred = model(batch["target_lr"], batch["image"])
    _, scale = normalization_stats(batch["target_lr"])
    loss = masked_mse(pred, batch["target"], batch["valid"], scale)
    return loss, {}


def error_metrics(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """Per-image metrics: RMSE and MAE for depth, EPE (and RMSE) for flow."""
    if kind == "flow":
        return {"epe": endpoint_error(pred, target, valid), "rmse": rmse(pred, target, valid)}
    return {"rmse": rmse(pred, target, valid), "mae": mae(pred, target, valid)}


def _normalised_error(model, pairs: list[dict]) -> float:
    """Mean over pairs of RMSE in units of each pair's low-res scale (unit-free validation)."""
    errors = []
    with torch.no_grad():
        for p in pairs:
            x, g = p["target_lr"][None], p["image"][None]
            _, scale = normalization_stats(x)
            errors.append(float(rmse(model(x, g), p["target"][None], p["valid"][None])) / float(scale))
    return float(np.mean(errors))


def train_upsampler(cfg: UpsampleConfig, run_dir: Path, *, resume: bool = False, log=print):
    """Train ``cfg.model`` into ``run_dir`` (JBU: grid search of its two bandwidths)."""
    cfg.check()
    run_dir = Path(run_dir)
    if cfg.model in ("bicubic", "bilinear"):
        raise ValueError(f"--model {cfg.model}: interpolation has nothing to train; use it directly in eval")
    val = validation_pairs(cfg)
    if cfg.model == "jbu":
        return search_jbu(cfg, run_dir, val, log=log)
    if cfg.model not in LEARNED:
        raise ValueError(f"--model {cfg.model!r}: expected one of {', '.join(LEARNED + PARAMETER_FREE)}")
    torch.manual_seed(cfg.train.seed)
    model = create_model(cfg.model, **model_config(cfg))
    base = open_dataset(cfg.data, cfg.kind, synthetic_length=cfg.synthetic_length, synthetic_size=cfg.crop,
                        seed=cfg.train.seed, target_scale=cfg.target_scale)
    pairs = UpsamplingPairs(base, cfg.factor, cfg.kind, None if cfg.data == "synthetic" else cfg.crop,
                            seed=cfg.train.seed)

    def validate(m):
        return {"val_nrmse": _normalised_error(m, val)}

    from ..engine import config_to_dict

    return train(model, pairs, upsampling_loss, cfg.train, run_dir, model_name=cfg.model,
                 model_config=model_config(cfg), validate=validate, full_config=config_to_dict(cfg),
                 resume=resume, log=log)


def jbu_grid() -> list[tuple[int, float, float]]:
    """(kernel_size, sigma_space, sigma_color) candidates; the window covers +-2 sigma_space."""
    grid = []
    for sigma_space, sigma_color in itertools.product((0.5, 0.75, 1.0, 1.5), (0.02, 0.04, 0.08, 0.16, 0.32)):
        grid.append((2 * math.ceil(2 * sigma_space) + 1, sigma_space, sigma_color))
    return grid


def search_jbu(cfg: UpsampleConfig, run_dir: Path, val: list[dict] | None = None, *, log=print):
    """Pick JBU's bandwidths by grid search on held-out synthetic scenes; save them as a model."""
    val = val if val is not None else validation_pairs(cfg)
    scores = []
    for kernel_size, sigma_space, sigma_color in jbu_grid():
        model = create_model("jbu", **model_config(cfg), kernel_size=kernel_size,
                             sigma_space=sigma_space, sigma_color=sigma_color)
        scores.append((_normalised_error(model, val), kernel_size, sigma_space, sigma_color))
    best = min(scores)
    options = {"kernel_size": best[1], "sigma_space": best[2], "sigma_color": best[3]}
    model = create_model("jbu", **model_config(cfg), **options)
    save_checkpoint(Path(run_dir) / "model", model, model_name="jbu", model_config={**model_config(cfg), **options},
                    metrics={"val_nrmse": best[0]}, config={"grid": [list(s) for s in scores]})
    log(f"jbu: best of {len(scores)} settings on {len(val)} validation scenes: kernel_size={best[1]} "
        f"sigma_space={best[2]} sigma_color={best[3]} (normalised RMSE {best[0]:.4f})")
    return model


# ----------------------------------------------------------------------------------- evaluation

def load_method(spec: str, factor: int, kind: str):
    """A method for evaluation: a parameter-free model name or a trained run folder / checkpoint."""
    if spec in PARAMETER_FREE:
        return spec, create_model(spec, factor=factor, kind=kind)
    path = Path(spec)
    if path.is_dir() and (path / "model.json").exists():
        path = path / "model"
    elif not path.exists() and not path.with_suffix(".json").exists():
        raise ValueError(f"--model {spec!r}: neither a model name ({', '.join(PARAMETER_FREE)}) nor a run folder "
                         f"or checkpoint that exists")
    model, ckpt = load_model(path, create_model)
    mcfg = ckpt.meta.get("model_config", {})
    if mcfg.get("factor") != factor or mcfg.get("kind", "depth") != kind:
        raise ValueError(f"--model {spec}: checkpoint {ckpt.path} was trained for factor {mcfg.get('factor')} "
                         f"{mcfg.get('kind')}, but factor {factor} {kind} was asked for")
    model.eval()
    return ckpt.meta.get("model_name", path.name), model


def method_geometry(spec: str, factor: int | None, kind: str | None) -> tuple[int, str]:
    """Factor and kind for ``spec``: as given, else from a checkpoint's sidecar, else x8 depth."""
    if spec not in PARAMETER_FREE and (factor is None or kind is None):
        from ..engine import load_checkpoint

        path = Path(spec)
        mcfg = load_checkpoint(path / "model" if (path / "model.json").exists() else path).model_config
        factor = factor or mcfg.get("factor")
        kind = kind or mcfg.get("kind", "depth")
    return factor or 8, kind or "depth"


def evaluation_pairs(spec: str, factor: int, kind: str, target_scale: float = 1000.0) -> list[dict]:
    data = open_dataset(spec, kind, split="test", synthetic_length=8, seed=VALIDATION_SEED + 1,
                        target_scale=target_scale)
    return [make_pair(crop_to_multiple(data[i], factor), factor, kind) for i in range(len(data))]


def evaluate(methods: list[tuple[str, torch.nn.Module]], pairs: list[dict], kind: str, *, keep_predictions: int = 1):
    """Metrics of every method on every pair: ``{method: {metric: mean over images}}``, plus the
    predictions of the first ``keep_predictions`` pairs for figures."""
    results, predictions = {}, {}
    for label, model in methods:
        per_image: dict[str, list[float]] = {}
        with torch.no_grad():
            for i, p in enumerate(pairs):
                pred = model(p["target_lr"][None], p["image"][None])
                for key, value in error_metrics(pred, p["target"][None], p["valid"][None], kind).items():
                    per_image.setdefault(key, []).append(float(value))
                if i < keep_predictions:
                    predictions.setdefault(label, []).append(pred[0])
        results[label] = {key: float(np.mean(v)) for key, v in per_image.items()}
        results[label]["images"] = len(pairs)
    return results, predictions


def run_evaluation(model_specs: list[str], *, factor: int, kind: str, data: str | None, out: Path,
                   target_scale: float = 1000.0):
    """Evaluate every method on ``data`` (default: the motorcycle for depth, generated scenes for
    flow); write ``out/metrics.json`` and ``out/report.html``. Returns (results, report path)."""
    from ..atomic import write_text_atomic
    from .upsample_report import write_upsampling_report

    data = data or ("motorcycle" if kind == "depth" else "synthetic")
    methods = [load_method(spec, factor, kind) for spec in model_specs]
    labels = [label for label, _ in methods]
    methods = [(label if labels.count(label) == 1 else f"{label} ({spec})", model)
               for (label, model), spec in zip(methods, model_specs)]
    pairs = evaluation_pairs(data, factor, kind, target_scale)
    results, predictions = evaluate(methods, pairs, kind)
    out = Path(out)
    write_text_atomic(out / "metrics.json", json.dumps({"data": data, "factor": factor, "kind": kind,
                                                        "metrics": results}, indent=2))
    report = write_upsampling_report(out / "report.html", title=f"pixelwise upsample eval: x{factor} {kind}",
                                     summary=f"{len(pairs)} image(s) from {data}; metrics on valid pixels only.",
                                     blocks=[{"factor": factor, "results": results, "pair": pairs[0],
                                              "predictions": predictions}], kind=kind)
    return results, report


# ----------------------------------------------------------------------------------- prediction

def read_prediction_inputs(image_path, target_path, *, factor: int, kind: str, target_scale: float = 1000.0):
    """Guide image + low-res target from files, checked against each other and the factor."""
    from ..data import formats

    image = torch.from_numpy(formats.read_rgb(image_path)).permute(2, 0, 1).contiguous()
    target = formats.read_target(target_path, scale=target_scale)
    target = np.asarray(target, dtype=np.float32)
    if target.ndim == 2:
        target = target[..., None]
    channels = KINDS[kind]
    if target.shape[-1] != channels:
        raise ValueError(f"{target_path}: a {kind} target needs {channels} channel(s), the file has {target.shape[-1]}")
    target = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)
    h, w = target.shape[1:]
    if h == 0 or w == 0:
        raise ValueError(f"{target_path}: empty map ({h}x{w})")
    if image.shape[1] != factor * h or image.shape[2] != factor * w:
        raise ValueError(f"{image_path}: guide is {image.shape[1]}x{image.shape[2]} but the target {target_path} is "
                         f"{h}x{w}; at factor {factor} the guide must be {factor * h}x{factor * w}")
    valid = torch.isfinite(target).all(0, keepdim=True)
    if kind == "depth":
        valid &= target[:1] > 0
    target = torch.where(valid, target, torch.zeros_like(target))
    if not valid.any():
        raise ValueError(f"{target_path}: no valid sample (all NaN, inf or zero)")
    return image, fill_invalid(target, valid, name=str(target_path))


def predict(model, image: torch.Tensor, target_lr: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(target_lr[None], image[None])[0]
