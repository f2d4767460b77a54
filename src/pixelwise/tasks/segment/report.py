"""The segmentation evaluation report: mIoU, pixel accuracy, boundary-band mIoU and time per method,
IoU per class, then for the first images the input, ground truth and each method's class map.

Ignored ground-truth pixels are drawn white, not black: black is class 0 of the VOC palette
(background), so black would hide where the labels are void.
"""

from __future__ import annotations

import numpy as np
import torch

from ...report import Figure, Report, Section

__all__ = ["METHOD_TIMES", "METHOD_TITLES", "colour_labels", "overlay", "segment_report"]

METHOD_TITLES = {"unaries": "unaries", "pac": "PAC-CRF", "dense": "dense CRF"}
METHOD_TIMES = {"unaries": "network", "pac": "pac_crf", "dense": "dense_crf"}  # keys of result["median_ms"]
IGNORE_RGB = (255, 255, 255)


def colour_labels(labels, palette: np.ndarray, ignore: int = 255) -> np.ndarray:
    """``(H, W)`` class ids -> ``(H, W, 3)`` uint8 palette colours; ``ignore`` pixels white."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    out = np.asarray(palette, np.uint8)[np.clip(labels, 0, len(palette) - 1)]
    out[labels == ignore] = IGNORE_RGB
    return out


def overlay(image: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The ``(H, W, 3)`` image in [0, 1] blended half and half with the ``(H, W, 3)`` uint8 colours."""
    img = np.asarray(image, np.float32)
    if img.shape != colours.shape:
        raise ValueError(f"image {img.shape} and colours {colours.shape} must have the same shape")
    return (np.clip(0.5 * img + 0.5 * colours.astype(np.float32) / 255.0, 0, 1) * 255).round().astype(np.uint8)


def methods_table(result: dict) -> tuple:
    rows = [[METHOD_TITLES[m], 100 * s["miou"], 100 * s["pixel_accuracy"], 100 * s["band_miou"],
             result["median_ms"].get(METHOD_TIMES[m])] for m, s in result["methods"].items()]
    return ("Methods: mIoU over the classes present, pixel accuracy, mIoU in the band around boundaries (%); "
            "median ms per image (unaries: the network; a CRF: the CRF alone)",
            ["method", "mIoU", "pixel accuracy", "band mIoU", "median ms"], rows)


def per_class_table(result: dict, names) -> tuple:
    methods = list(result["methods"])
    rows = []
    for name in names:
        ious = [result["methods"][m]["per_class_iou"].get(name) for m in methods]
        rows.append([name, *(None if v is None else 100 * v for v in ious)])
    return ("IoU per class (%); a dash: the class is absent from the ground truth",
            ["class", *(METHOD_TITLES[m] for m in methods)], rows)


def example_sections(examples: list[dict], palette: np.ndarray) -> list[Section]:
    sections = []
    for ex in examples:
        image = ex["image"].permute(1, 2, 0).numpy() if isinstance(ex["image"], torch.Tensor) else ex["image"]
        figures = [Figure("input", (np.clip(image, 0, 1) * 255).round().astype(np.uint8)),
                   Figure("ground truth", colour_labels(np.asarray(ex["label"]), palette), "white: ignored")]
        figures += [Figure(title, colour_labels(np.asarray(ex[m]), palette))
                    for m, title in METHOD_TITLES.items() if m in ex]
        sections.append(Section(f"image {ex['name']}", figures))
    return sections


def segment_report(result: dict, names, palette: np.ndarray, *, title: str, description: str) -> Report:
    """The report of :func:`~.inference.evaluate_dataset`'s ``result`` (with ``examples``)."""
    summary = (f"{description}. The PAC-CRF (when the network has one) and the dense CRF run on the same unaries. "
               f"The band mIoU counts only pixels within the band around ground-truth boundaries, where a CRF "
               f"changes the most.")
    return Report(title, summary, tables=[methods_table(result), per_class_table(result, names)],
                  sections=example_sections(result.get("examples", []), palette),
                  highlight={"mIoU": "max", "band mIoU": "max"})
