"""The report of joint upsampling: one table of every method, then per method the prediction and
its error map, all on shared colour scales so the eye compares like with like."""

from __future__ import annotations

import numpy as np
import torch

from ...report import Figure, Report, Section, colorize_error, colorize_flow, colorize_scalar

__all__ = ["error_map", "metrics_table", "scene_sections", "upsampling_report", "visualise"]


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().transpose(1, 2, 0)


def _metric_keys(kind: str) -> list[str]:
    return ["epe", "rmse"] if kind == "flow" else ["rmse", "mae"]


def visualise(value: torch.Tensor, valid: torch.Tensor, kind: str, limits) -> np.ndarray:
    """Colour a (C,H,W) depth or flow map with shared ``limits`` ((vmin, vmax) or max magnitude)."""
    mask = valid[0].cpu().numpy()
    if kind == "flow":
        return colorize_flow(_to_hwc(value), mask, max_magnitude=limits)
    return colorize_scalar(value[0].cpu().numpy(), mask, vmin=limits[0], vmax=limits[1])


def error_map(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    """Per-pixel error magnitude (|d| for depth, end-point error for flow); 0 where invalid."""
    err = (pred - target).square().sum(0).sqrt()
    return torch.where(valid[0], err, torch.zeros_like(err)).cpu().numpy()


def scene_sections(pair: dict, predictions: dict[str, torch.Tensor], kind: str, factor: int) -> list[Section]:
    """The inputs of one scene, then each method's prediction and error map."""
    target, valid = pair["target"], pair["valid"]
    if kind == "flow":
        mag = target.square().sum(0).sqrt()[valid[0]]
        limits = float(mag.max()) if mag.numel() else 1.0
    else:
        values = target[0][valid[0]].numpy()
        limits = (float(np.percentile(values, 1)), float(np.percentile(values, 99)))
    errors = {label: error_map(p, target, valid) for label, p in predictions.items()}
    err_max = float(max(np.percentile(e[valid[0].numpy()], 99) for e in errors.values())) or 1.0
    image = (pair["image"].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    lr = pair["target_lr"]
    lr_big = lr.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    inputs = Section(f"{pair.get('name', 'scene')}: inputs (x{factor})", [
        Figure("guide (RGB)", image),
        Figure(f"low-res input ({lr.shape[1]}x{lr.shape[2]}, shown nearest)",
               visualise(lr_big, torch.ones_like(valid), kind, limits)),
        Figure("ground truth", visualise(target, valid, kind, limits), "grey: invalid pixels (masked in metrics)"),
    ])
    sections = [inputs]
    for label, pred in predictions.items():
        sections.append(Section(f"{label} (x{factor})", [
            Figure("prediction", visualise(pred, torch.ones_like(valid), kind, limits)),
            Figure("error", colorize_error(errors[label], valid[0].numpy(), vmax=err_max),
                   f"black = 0, bright = {err_max:.3g} or more (shared by all methods)"),
        ]))
    return sections


def metrics_table(results: dict, kind: str, caption: str):
    keys = _metric_keys(kind)
    header = ["method"] + keys + ["images"]
    rows = [[label] + [values.get(k) for k in keys] + [values.get("images")] for label, values in results.items()]
    return caption, header, rows


def upsampling_report(*, title: str, summary: str, blocks: list[dict], kind: str,
                      metadata: dict | None = None) -> Report:
    """``blocks``: one per factor, each ``{"factor", "results", "pair", "predictions"}``."""
    tables, sections = [], []
    for block in blocks:
        tables.append(metrics_table(block["results"], kind, f"x{block['factor']} on {block['pair'].get('name', '')}"))
        preds = {label: p[0] for label, p in block["predictions"].items()}
        sections.extend(scene_sections(block["pair"], preds, kind, block["factor"]))
    return Report(title, summary=summary, tables=tables, sections=sections, metadata=metadata or {},
                  highlight={k: "min" for k in _metric_keys(kind)})
