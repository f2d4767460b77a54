"""``pixelwise margin``: how small the embedding loss margin can be for n instances in D dimensions."""

from __future__ import annotations

import json
from pathlib import Path

from ._common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("margin", help="margin alpha admitting zero loss for n instances in a D-dim embedding "
                                      "(Proposition 2 and numerical spherical codes)")
    p.add_argument("--dim", type=positive_int, default=3, help="embedding dimension D (default 3)")
    p.add_argument("--instances", type=positive_int, nargs="+", default=[4, 5, 6, 7], metavar="N",
                   help="instance counts (default 4 5 6 7)")
    p.add_argument("--restarts", type=positive_int, default=8, help="random starts of the packing optimiser")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..atomic import write_text_atomic
    from ..grouping import margin_table

    rows = margin_table(args.dim, list(args.instances), restarts=args.restarts, seed=args.seed)
    print(f"embedding dimension D = {args.dim}; zero loss needs alpha >= (1 + max cosine) / 2 of the best packing")
    print(f"{'n':>5} {'paper bound':>12} {'min angle':>10} {'max cos':>9} {'alpha 0-loss':>13} {'alpha=0.5 ok':>13}")
    for r in rows:
        bound = "-" if r["paper_bound"] is None else f"{r['paper_bound']:.3f}"
        ok = "yes" if r["antipodal_rule"] else "no"
        print(f"{r['n']:>5} {bound:>12} {r['min_angle_deg']:>9.2f}° {r['max_cosine']:>9.4f} "
              f"{r['alpha_zero_loss']:>13.4f} {ok:>13}")
    if args.dim == 3:
        print("paper bound: Proposition 2, 1 - 2 pi / (sqrt(3) n); a necessary condition, below the packed alpha")
    print(f"alpha = 0.5 (cosine 0) admits zero loss exactly when n <= 2 D = {2 * args.dim} (antipodal axes)")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps({"dim": args.dim, "restarts": args.restarts, "seed": args.seed,
                                            "rows": rows}, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
