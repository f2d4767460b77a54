"""Using a trained segmentation network: class maps of one image (unaries and each CRF, timed),
scores over a dataset (mIoU, pixel accuracy, per-class IoU, boundary-band mIoU), label PNGs for
image files.

The functions that take a :class:`~pixelwise.tasks.LoadedRun` use what
:meth:`~.task.SegmentTask.attach` put in its ``extras``: ``crf`` (the choice), ``method`` (the map
prediction writes), ``dense`` (a :class:`~pixelwise.nn.DenseCRF` with the run's parameters, or
None), ``class_names`` and ``palette``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ...data.io.files import image_files
from ...data.io.formats import read_rgb, write_png
from ...data.io.palette_png import write_palette_png
from ...engine import config_to_dict
from ...metrics.segmentation import boundary_band, confusion_matrix, segmentation_scores
from ...report import Report
from ..base import LoadedRun
from .config import IGNORE_LABEL
from .data import class_names, evaluation_dataset, palette
from .report import METHOD_TIMES, colour_labels, overlay, segment_report

__all__ = ["evaluate_dataset", "evaluate_run", "predict_folder", "predict_image", "summary_lines"]

METHODS = ("unaries", "pac", "dense")


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
        for method in METHODS:
            if method in pred:
                scores.setdefault(method, _Scores(num_classes)).update(pred[method], label, band, num_classes)
        for k, v in pred["ms"].items():
            times.setdefault(k, []).append(v)
        if i < keep_examples:
            examples.append({"name": item.get("name", f"{i:04d}"), "image": item["image"], "label": label,
                             **{m: pred[m] for m in METHODS if m in pred}})
        if log:
            log(f"image {i + 1}/{count}")
    model.train(was_training)
    return {"images": count, "methods": {k: v.result(names) for k, v in scores.items()},
            "median_ms": {k: float(np.median(v)) for k, v in times.items()}, "examples": examples}


def evaluate_run(loaded: LoadedRun, data: str, *, split: str = "test", max_images: int = 0, examples: int = 6,
                 follow_symlinks: bool = False, log: Callable[[str], object] | None = None) -> tuple[dict, Report]:
    """Score a loaded run (unaries and CRFs) on ``data``: the metrics (``metrics.json``) and the report."""
    names = class_names(data)
    cfg, model = loaded.config, loaded.model
    if len(names) != model.num_classes:
        raise ValueError(f"--data {data}: has {len(names)} classes, but --model {loaded.source} was trained for "
                         f"{model.num_classes} classes (on {cfg.data} data)")
    dataset = evaluation_dataset(cfg, data, split, follow_symlinks=follow_symlinks)
    dense = loaded.extras["dense"]
    result = evaluate_dataset(model, dataset, model.num_classes, dense=dense, max_images=max_images,
                              band_width=cfg.band_width, names=names, keep_examples=examples, log=log)
    summary = {"model": str(loaded.source), "data": str(data), "split": split, "images": result["images"],
               "methods": result["methods"], "median_ms": result["median_ms"], "band_width": cfg.band_width,
               "dense_crf_params": config_to_dict(dense.params) if dense is not None else None}
    report = segment_report(result, names, palette(data), title="pixelwise segment eval",
                            description=f"{result['images']} image(s) from {data} ({split}), model {loaded.source}, "
                                        f"boundary band {cfg.band_width} px each side")
    return summary, report


def summary_lines(summary: dict) -> list[str]:
    """The console lines of an evaluation: the image count, then one line per method."""
    lines = [f"{summary['images']} images, {len(summary['methods'])} method(s)"]
    for method, scores in summary["methods"].items():
        ms = summary["median_ms"].get(METHOD_TIMES[method])
        lines.append(f"{method:8s} mIoU {100 * scores['miou']:.1f}, pixel accuracy "
                     f"{100 * scores['pixel_accuracy']:.1f}, band mIoU {100 * scores['band_miou']:.1f}"
                     + (f", {ms:.0f} ms" if ms is not None else ""))
    return lines


def predict_folder(loaded: LoadedRun, images: str | Path, out: str | Path, *,
                   log: Callable[[str], object] = print) -> list[Path]:
    """Class maps of ``loaded.extras["method"]`` for an image file or a folder of images.

    Writes ``labels/<stem>.png`` (palette PNG of class ids, the VOC ``SegmentationClass`` format),
    ``colour/<stem>.png`` (the class colours as RGB) and ``overlays/<stem>.png`` (the image
    blended half and half with them). Images are read by :func:`~pixelwise.data.io.formats.read_rgb`:
    grayscale (8- or 16-bit) is repeated over three channels, alpha is dropped, a palette is
    expanded; an unreadable file stops with an error naming it.
    """
    out = Path(out)
    method, colours_of = loaded.extras["method"], loaded.extras["palette"]
    written = []
    for path in image_files(Path(images)):
        rgb = read_rgb(path)
        pred = predict_image(loaded.model, torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), loaded.extras["dense"])
        labels = pred[method].numpy().astype(np.uint8)
        target = out / "labels" / f"{path.stem}.png"
        write_palette_png(target, labels, colours_of)
        colours = colour_labels(labels, colours_of)
        write_png(out / "colour" / f"{path.stem}.png", colours)
        write_png(out / "overlays" / f"{path.stem}.png", overlay(rgb, colours))
        written.append(target)
        ms = ", ".join(f"{k} {v:.0f} ms" for k, v in pred["ms"].items())
        log(f"{path.name}: {method}, {ms} -> {target}")
    return written
