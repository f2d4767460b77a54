"""``pixelwise instances margin``: how small the embedding loss margin can be for n instances in
D dimensions (Proposition 2 and numerical spherical codes, computed by
:func:`pixelwise.grouping.margin_table`)."""

from __future__ import annotations

import json
from pathlib import Path

from ...atomic import write_text_atomic
from ...checks import parse_positive_int
from ...grouping import margin_table
from ..base import Option, Verb

__all__ = ["MARGIN", "margin_lines"]


def margin_lines(dim: int, rows: list[dict]) -> list[str]:
    """The printed table of :func:`~pixelwise.grouping.margin_table`'s ``rows`` for dimension ``dim``."""
    lines = [f"embedding dimension D = {dim}; zero loss needs alpha >= (1 + max cosine) / 2 of the best packing",
             f"{'n':>5} {'paper bound':>12} {'min angle':>10} {'max cos':>9} {'alpha 0-loss':>13} "
             f"{'alpha=0.5 ok':>13}"]
    for r in rows:
        bound = "-" if r["paper_bound"] is None else f"{r['paper_bound']:.3f}"
        ok = "yes" if r["antipodal_rule"] else "no"
        lines.append(f"{r['n']:>5} {bound:>12} {r['min_angle_deg']:>9.2f}° {r['max_cosine']:>9.4f} "
                     f"{r['alpha_zero_loss']:>13.4f} {ok:>13}")
    if dim == 3:
        lines.append("paper bound: Proposition 2, 1 - 2 pi / (sqrt(3) n); a necessary condition, below the packed "
                     "alpha")
    lines.append(f"alpha = 0.5 (cosine 0) admits zero loss exactly when n <= 2 D = {2 * dim} (antipodal axes)")
    return lines


def run_margin(options, log) -> int:
    rows = margin_table(options.dim, list(options.instances), restarts=options.restarts, seed=options.seed)
    for line in margin_lines(options.dim, rows):
        print(line)
    if options.json:
        path = Path(options.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"dim": options.dim, "restarts": options.restarts, "seed": options.seed,
                                            "rows": rows}, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


MARGIN = Verb("margin", "margin alpha admitting zero loss for n instances in a D-dim embedding (Proposition 2 and "
                        "numerical spherical codes)", (
    Option("--dim", "embedding dimension D", type=parse_positive_int, default=3),
    Option("--instances", "instance counts", type=parse_positive_int, nargs="+", default=[4, 5, 6, 7], metavar="N"),
    Option("--restarts", "random starts of the packing optimiser", type=parse_positive_int, default=8),
    Option("--seed", "seed of the packing optimiser", type=int, default=0),
    Option("--json", "also write the table as JSON", metavar="PATH"),
), run_margin)
