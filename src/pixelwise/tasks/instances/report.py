"""The instance-grouping evaluation report: recall against the number of proposals, AP^r per class,
timings, then for the first images the input, ground truth, embedding (random projection to RGB)
and predicted instances."""

from __future__ import annotations

from ...report import Figure, Report, Section
from ...report.instances import embedding_to_rgb, instance_image, instance_overlay
from .inference import TOP_K, primary_masks, proposal_id_map, upsample

__all__ = ["ap_table", "example_sections", "instances_report", "recall_table"]


def recall_table(summary: dict, top_k) -> tuple:
    rows = [[k, summary.get(f"recall50@{k}"), summary.get(f"ar@{k}")] for k in top_k
            if f"recall50@{k}" in summary]
    return ("Object proposals: recall of ground-truth instances by the top k proposals",
            ["k", "recall at IoU 0.5", "AR over IoU 0.5:0.05:0.95"], rows)


def ap_table(ap_per_class: dict, mean_ap: float) -> tuple:
    rows = [[name, 100 * float(v)] for name, v in ap_per_class.items()]
    rows.append(["mean", 100 * float(mean_ap)])
    return "Instance segmentation: AP^r (%) at mask IoU 0.5", ["class", "AP^r"], rows


def example_sections(examples: list[dict], primary_kappa: float) -> list[Section]:
    sections = []
    for ex in examples:
        pred = ex["prediction"]
        image = ex["image"]
        emb = upsample(pred.embedding[None], image.shape[:2])[0]
        ids = proposal_id_map(primary_masks(pred.proposals, primary_kappa))
        sections.append(Section(f"image {ex['name']}", [
            Figure("input", (image.clip(0, 1) * 255).round().astype("uint8")),
            Figure("ground truth", instance_image(ex["instances"]), "one colour per instance; white: ignored"),
            Figure("embedding", embedding_to_rgb(emb), "random projection of the unit embedding to RGB"),
            Figure("instances", instance_overlay(image, ids),
                   f"{int(ids.max())} instance(s) at the primary bandwidth, {len(pred.proposals.masks)} proposals "
                   f"pooled over bandwidths"),
        ]))
    return sections


def instances_report(result: dict, ap_per_class: dict, *, primary_kappa: float, title: str,
                     description: str) -> Report:
    """The report of :func:`~.inference.evaluate_dataset`'s ``result`` (AP^r per class by name)."""
    s = result["summary"]
    timing = [["network (median ms per image)", s["network_ms"]],
              ["instance extraction (median ms per image)", s["extraction_ms"]],
              ["proposals per image (mean)", s["mean_proposals"]]]
    tables = [recall_table(s, TOP_K), ap_table(ap_per_class, s["map"]), ("Time", ["what", "value"], timing)]
    summary = (f"{description}. Recall counts a ground-truth instance as found when one of the image's top-k "
               f"proposals (by score) overlaps it with mask IoU >= 0.5; AR averages that recall over IoU "
               f"thresholds 0.5 to 0.95. AP^r follows the VOC/SDS protocol: a second detection of an already "
               f"matched instance is a false positive.")
    return Report(title, summary=summary, tables=tables,
                  sections=example_sections(result.get("examples", []), primary_kappa))
