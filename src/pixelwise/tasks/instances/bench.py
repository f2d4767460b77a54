"""``pixelwise bench instances``: instance-grouping costs, as ratios measured in one run (interleaved medians):

* recurrent mean shift (GBMS, ``T`` iterations, ``D = 64``) forward + backward through the
  pairwise loss at every iteration, against the same loss without mean shift (``T = 0``), for
  ``N`` sampled pixels; plus the bytes autograd keeps for the backward pass (``O(T N^2)``);
* instance extraction from a 1/8 embedding to a full 512 x 512 instance map, against
  ``sklearn.cluster.MeanShift`` (flat kernel, Euclidean) on the same embedding pixels, and the
  recall each reaches on the same ground truth.

The embeddings are those of a trained model on held-out synthetic scenes when ``--model`` is
given; otherwise they are made from the ground truth of synthetic scenes: one random unit vector
per instance, per-pixel noise, then area-averaged to 1/8 resolution and re-normalised (mixed
vectors at object borders, as a stride-8 network produces).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...bench.ops import saved_for_backward_mb
from ...bench.report import BenchTable
from ...bench.timing import interleaved_medians
from ...checks import check_float, check_int, parse_positive_int
from ...data.datasets.voc_instances import IGNORE_LABEL, instance_masks
from ...data.synthetic.instances import SceneConfig, SyntheticInstances
from ...grouping import ExtractionConfig, extract_instances
from ...losses import PixelEmbeddingLoss
from ...metrics.instances import ProposalRecall
from ...nn import RecurrentMeanShift
from ...options import Option
from ..loading import load_run

__all__ = ["OPTIONS", "InstancesBenchReport", "bench_extraction", "bench_gbms", "run", "run_suite",
           "sklearn_instances", "synthetic_embedding"]


@dataclass
class InstancesBenchReport(BenchTable):
    threads: int
    torch_version: str
    embeddings: str
    gbms: list[dict] = field(default_factory=list)
    extraction: dict = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"torch {self.torch_version} | {self.threads} threads | embeddings: {self.embeddings}", "",
                 "GBMS forward + backward (loss after every iteration), D = 64",
                 f"{'N':>6} {'T':>3} {'ms':>9} {'T=0 ms':>9} {'ratio':>7} {'saved MB':>9} {'T=0 MB':>8}"]
        for r in self.gbms:
            lines.append(f"{r['n']:>6} {r['iterations']:>3} {r['ms']:>9.1f} {r['baseline_ms']:>9.1f} "
                         f"{r['ratio']:>7.2f} {r['saved_mb']:>9.1f} {r['baseline_saved_mb']:>8.1f}")
        e = self.extraction
        if e:
            lines += ["", f"Extraction, {e['embedding']} embedding -> {e['size']}x{e['size']} instance map "
                          f"({e['images']} images, medians)",
                      f"{'method':<28} {'ms/image':>9} {'recall50@10':>12} {'AR@10':>7} {'proposals':>10}"]
            for name in ("pixelwise", "sklearn"):
                r = e[name]
                lines.append(f"{r['label']:<28} {r['ms']:>9.1f} {r['recall50@10']:>12.3f} {r['ar@10']:>7.3f} "
                             f"{r['proposals']:>10.1f}")
            lines.append(f"time ratio sklearn / pixelwise: {e['sklearn']['ms'] / e['pixelwise']['ms']:.1f}")
        return "\n".join(lines)


def bench_gbms(n: int, dim: int, iterations: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(n)
    # Ten instances with noisy members: a realistic similarity structure, not random noise.
    centres = F.normalize(torch.randn(10, dim, generator=g), dim=1)
    labels = torch.randint(0, 10, (1, n), generator=g)
    x0 = F.normalize(centres[labels[0]].T[None] + 0.6 * torch.randn(1, dim, n, generator=g) / dim ** 0.5, dim=1)
    x0 = x0.view(1, dim, n, 1)
    labels = labels.view(1, n, 1)
    with_ms = PixelEmbeddingLoss(max_pixels=n, mean_shift=RecurrentMeanShift(6.0, 1.0, iterations))
    without = PixelEmbeddingLoss(max_pixels=n)

    def run(loss):
        x = x0.clone().requires_grad_()
        loss(x, labels).backward()

    t, t0 = interleaved_medians([lambda: run(with_ms), lambda: run(without)], repeats)
    saved = saved_for_backward_mb(lambda: with_ms(x0.clone().requires_grad_(), labels))
    saved0 = saved_for_backward_mb(lambda: without(x0.clone().requires_grad_(), labels))
    return {"n": n, "dim": dim, "iterations": iterations, "ms": t, "baseline_ms": t0, "ratio": t / t0,
            "saved_mb": saved, "baseline_saved_mb": saved0}


def synthetic_embedding(instances: np.ndarray, dim: int, rng: np.random.Generator, stride: int = 8,
                        noise: float = 0.5) -> torch.Tensor:
    """A (D, H/stride, W/stride) embedding made from an instance map (see the module docstring)."""
    ids = np.unique(instances)
    centres = rng.standard_normal((int(ids.max()) + 1, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    full = torch.from_numpy(centres[instances]).permute(2, 0, 1)
    full = full + noise * torch.from_numpy(rng.standard_normal(full.shape).astype(np.float32)) / dim ** 0.5
    coarse = F.avg_pool2d(F.normalize(full, dim=0)[None], stride)[0]
    return F.normalize(coarse, dim=0)


def sklearn_instances(embedding: torch.Tensor, size, bandwidth: float):
    """MeanShift (scikit-learn, flat kernel) on the coarse pixels; every full-resolution pixel then
    goes to the nearest cluster centre, like the pixelwise extraction. Masks sorted by cluster size."""
    from sklearn.cluster import MeanShift  # heavy import, needed only for this baseline

    d = embedding.shape[0]
    pts = embedding.reshape(d, -1).T.numpy()
    # No bin seeding: it rounds coordinates to the bandwidth grid, which puts every unit vector of a
    # 64-D embedding in the bin at the origin (one seed, one cluster).
    ms = MeanShift(bandwidth=bandwidth).fit(pts)
    centres = F.normalize(torch.from_numpy(ms.cluster_centers_).float(), dim=1)
    full = F.normalize(F.interpolate(embedding[None], size=size, mode="bilinear", align_corners=False)[0], dim=0)
    assign = (centres @ full.reshape(d, -1)).argmax(0).reshape(size).numpy()
    counts = np.bincount(assign.ravel(), minlength=len(centres))
    order = np.argsort(-counts)
    masks = np.stack([assign == k for k in order if counts[k]])
    return masks, counts[order][counts[order] > 0].astype(float)


def bench_extraction(images: int, size: int, model_spec: str | None, bandwidth: float, repeats: int) -> dict:
    cfg = ExtractionConfig()
    scenes = SyntheticInstances(images, seed=12345, cfg=SceneConfig(height=size, width=size))
    model = load_run(model_spec, task="instances").model if model_spec else None
    rng = np.random.default_rng(0)
    ours, theirs = ProposalRecall(), ProposalRecall()
    t_ours, t_theirs, n_ours, n_theirs = [], [], [], []
    dim = 64
    for i in range(images):
        item = scenes[i]
        inst = item["instances"].numpy()
        if model is not None:
            with torch.no_grad():
                emb = model(item["image"][None])["embedding"][0]
        else:
            emb = synthetic_embedding(inst, dim, rng)
        masks, _, ignore = instance_masks(inst, item["semantic"].numpy(), IGNORE_LABEL)
        [t1] = interleaved_medians([lambda: extract_instances(emb, (size, size), cfg)], repeats, warmup=1)
        p = extract_instances(emb, (size, size), cfg)
        t0 = time.perf_counter()
        sk_masks, sk_scores = sklearn_instances(emb, (size, size), bandwidth)
        t_theirs.append(1e3 * (time.perf_counter() - t0))
        t_ours.append(t1)
        ours.update(p.masks, p.scores, masks, ignore)
        theirs.update(sk_masks, sk_scores, masks, ignore)
        n_ours.append(len(p.masks))
        n_theirs.append(len(sk_masks))
    r_ours, r_theirs = ours.result(top_k=(10,)), theirs.result(top_k=(10,))
    h, w = emb.shape[-2:]
    return {"size": size, "images": images, "embedding": f"{dim}x{h}x{w}",
            "pixelwise": {"label": "pixelwise extract_instances", "ms": float(np.median(t_ours)),
                          "recall50@10": r_ours["recall50@10"], "ar@10": r_ours["ar@10"],
                          "proposals": float(np.mean(n_ours))},
            "sklearn": {"label": f"sklearn MeanShift h={bandwidth:g}", "ms": float(np.median(t_theirs)),
                        "recall50@10": r_theirs["recall50@10"], "ar@10": r_theirs["ar@10"],
                        "proposals": float(np.mean(n_theirs))}}


def run(sizes=(1024, 4096), iterations: int = 5, repeats: int = 3, threads: int = 2, images: int = 2,
        image_size: int = 512, model: str | None = None, bandwidth: float = 1.0,
        progress=lambda message: None) -> InstancesBenchReport:
    torch.set_num_threads(threads)
    report = InstancesBenchReport(threads, torch.__version__, f"trained model {model}" if model else
                                  "synthetic (ground-truth instances + noise, stride 8)")
    for n in sizes:
        progress(f"GBMS N={n}")
        report.gbms.append(bench_gbms(n, 64, iterations, repeats))
    if images:
        progress(f"extraction on {images} image(s) of {image_size}x{image_size}")
        report.extraction = bench_extraction(images, image_size, model, bandwidth, repeats)
    return report


OPTIONS = (
    Option("--sizes", "sampled pixels N of the GBMS timing", type=parse_positive_int, nargs="+", default=[1024, 4096]),
    Option("--iterations", "T mean-shift iterations", type=parse_positive_int, default=5),
    Option("--images", "synthetic images for the extraction comparison (0 = skip)", type=int, default=2),
    Option("--image-size", "side of the synthetic images", type=parse_positive_int, default=512),
    Option("--model", "a trained instances run folder: use its embeddings instead of synthetic ones"),
    Option("--bandwidth", "sklearn MeanShift bandwidth (Euclidean; 1.0 = cosine 0.5 on the unit sphere)", type=float,
           default=1.0),
    Option("--repeats", "timed runs (median)", type=parse_positive_int, default=3),
    Option("--threads", "torch threads", type=parse_positive_int, default=2),
)


def run_suite(options, log) -> InstancesBenchReport:
    """``pixelwise bench instances``: the options of :data:`OPTIONS` as a namespace."""
    check_int(options.images, "--instances-images", min=0)
    check_float(options.bandwidth, "--instances-bandwidth", low=0, low_open=True)
    return run(sizes=options.sizes, iterations=options.iterations, repeats=options.repeats, threads=options.threads,
               images=options.images, image_size=options.image_size, model=options.model,
               bandwidth=options.bandwidth, progress=log)
