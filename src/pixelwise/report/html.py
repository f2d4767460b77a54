"""A self-contained HTML run report: tables of numbers, figure grids, a metadata block.

One HTML file, written atomically. No JavaScript, no external resources: with
``embed_images=True`` (the default) every image is inlined as a base64 PNG data URI, so the
report can be moved or mailed on its own; with ``embed_images=False`` array images are
saved as PNG files in ``<report stem>_files/`` next to the report and linked relatively.

Every piece of caller text (titles, captions, table cells, metadata) is HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import os
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

import numpy as np

from pixelwise.atomic import write_bytes_atomic
from pixelwise.checks import WrongTypeError, check_choice
from pixelwise.report.colormap import _check_image, save_png, to_png_bytes

__all__ = ["Figure", "Section", "write_report", "format_cell"]

_MISSING = "\u2014"  # em dash, shown for None

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.45;
       color: #1d1f21; background: #fff; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1400px; }
h1 { font-size: 1.7rem; margin: 0 0 .5rem; }
h2 { font-size: 1.3rem; margin: 2rem 0 .6rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
p { margin: .4rem 0; }
.summary { color: #333; max-width: 70em; }
table { border-collapse: collapse; margin: 1rem 0 1.5rem; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e3e3e3; text-align: left; }
th { background: #f4f5f7; border-bottom: 2px solid #ccc; }
td.num { text-align: right; }
td.best strong { color: #0b5394; }
tbody tr:nth-child(even) { background: #fafafa; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
figure { margin: 0; padding: .5rem; border: 1px solid #e3e3e3; border-radius: 4px; background: #fcfcfc; }
figure img { display: block; width: 100%; height: auto; image-rendering: auto; }
figcaption { font-size: .9rem; margin-top: .35rem; color: #333; }
figcaption .fig-title { font-weight: 600; display: block; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; font-size: .9rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
             overflow-wrap: anywhere; white-space: pre-wrap; }
"""


@dataclass
class Figure:
    """One image of a section: a ``uint8`` RGB array (e.g. from ``colorize_*``) or an image file."""

    title: str
    image: np.ndarray | Path
    caption: str = ""


@dataclass
class Section:
    """A titled group of figures shown side by side, with optional text above them."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    text: str = ""


# --------------------------------------------------------------------------- formatting


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _as_float(x: Any) -> float | None:
    """The value used to rank a cell for highlighting; None for non-numbers and NaN."""
    if not _is_number(x):
        return None
    v = float(x)
    return None if math.isnan(v) else v


def format_cell(x: Any) -> str:
    """Text of one table cell (not yet escaped).

    None -> an em dash; ints without decimals; floats to 4 significant digits (fixed notation
    between 1e-3 and 1e6, scientific outside); anything else ``str()``.
    """
    if x is None:
        return _MISSING
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == 0:
            return "0"
        ax = abs(x)
        if 1e-3 <= ax < 1e6:
            decimals = max(0, 3 - math.floor(math.log10(ax)))
            return f"{x:.{decimals}f}"
        return f"{x:.3e}"
    return str(x)


def _paragraphs(text: str, cls: str | None = None) -> str:
    """Blank-line separated paragraphs of caller text, escaped."""
    attr = f' class="{cls}"' if cls else ""
    parts = [p.strip() for p in re.split(r"\n\s*\n", str(text)) if p.strip()]
    return "".join(f"<p{attr}>{escape(p)}</p>\n" for p in parts)


# --------------------------------------------------------------------------- tables


def _best_rows(rows: Sequence[Sequence[Any]], col: int, mode: str) -> set[int]:
    scored = [(i, _as_float(r[col])) for i, r in enumerate(rows)]
    scored = [(i, v) for i, v in scored if v is not None]
    if not scored:
        return set()
    best = (min if mode == "min" else max)(v for _, v in scored)
    return {i for i, v in scored if v == best}


def _render_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
                  highlight: Mapping[str, str], index: int) -> str:
    header = [str(h) for h in header]
    rows = [list(r) for r in rows]
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(
                f"tables[{index}]: row {i} has {len(r)} cells but the header has {len(header)} columns"
            )
    bold: dict[int, set[int]] = {}
    for c, name in enumerate(header):
        if name in highlight:
            bold[c] = _best_rows(rows, c, highlight[name])

    out = ["<table>\n"]
    if caption:
        out.append(f"<caption>{escape(str(caption))}</caption>\n")
    out.append("<thead><tr>")
    out.extend(f'<th scope="col">{escape(h)}</th>' for h in header)
    out.append("</tr></thead>\n<tbody>\n")
    for i, r in enumerate(rows):
        out.append("<tr>")
        for c, cell in enumerate(r):
            classes = []
            if _is_number(cell):
                classes.append("num")
            text = escape(format_cell(cell))
            if i in bold.get(c, ()):
                classes.append("best")
                text = f"<strong>{text}</strong>"
            attr = f' class="{" ".join(classes)}"' if classes else ""
            out.append(f"<td{attr}>{text}</td>")
        out.append("</tr>\n")
    out.append("</tbody>\n</table>\n")
    return "".join(out)


# --------------------------------------------------------------------------- figures


def _slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return s[:limit].strip("-") or "figure"


def _rel_url(target: Path, base_dir: Path) -> str:
    """Relative URL from ``base_dir`` to ``target`` (percent-encoded, forward slashes)."""
    try:
        rel = os.path.relpath(os.path.abspath(target), os.path.abspath(base_dir))
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(os.path.abspath(target)).as_uri()
    return quote(Path(rel).as_posix())


def _file_data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0]
    if mime is None or not mime.startswith("image/"):
        mime = "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{mime};base64,{data}"


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- the report


def write_report(
    path: str | os.PathLike,
    *,
    title: str,
    summary: str = "",
    tables: Iterable[tuple[str, Sequence[str], Sequence[Sequence[Any]]]] = (),
    sections: Iterable[Section] = (),
    metadata: Mapping[str, Any] | None = None,
    embed_images: bool = True,
    highlight: Mapping[str, str] | None = None,
) -> Path:
    """Write a self-contained HTML report to ``path`` (atomically) and return its path.

    ``tables`` are ``(caption, header, rows)``; ``highlight`` maps a column name to ``"min"``
    or ``"max"`` and marks that column's best numeric cell(s) bold in every table that has
    it. ``sections`` hold figure grids. ``metadata`` (versions, command line, timestamp, ...)
    is shown as a definition list. With ``embed_images=False`` array figures are saved as
    PNGs in ``<stem>_files/`` beside the report and file figures are linked by relative path.

    The whole page is built in memory before anything is written, so a bad argument raises
    and leaves an existing report untouched.
    """
    path = Path(path)
    tables = list(tables)
    sections = list(sections)
    highlight = dict(highlight or {})
    for col, mode in highlight.items():
        check_choice(mode, f"highlight[{col!r}]", ("min", "max"))
    for i, t in enumerate(tables):
        if not (isinstance(t, (tuple, list)) and len(t) == 3):
            raise ValueError(f"tables[{i}]: expected (caption, header, rows), got {type(t).__name__}")
    if tables and highlight:
        known = {str(h) for _, header, _ in tables for h in header}
        unknown = sorted(set(highlight) - known)
        if unknown:
            raise ValueError(f"highlight: no table has the column(s) {unknown}")
    for i, s in enumerate(sections):
        if not isinstance(s, Section):
            raise WrongTypeError(f"sections[{i}]: expected a Section, got {type(s).__name__}")

    files_dir = path.parent / f"{path.stem}_files"
    pending_pngs: list[tuple[Path, np.ndarray]] = []  # written only once the page is complete

    def image_src(fig: Figure, si: int, fi: int) -> str:
        img = fig.image
        where = f"sections[{si}].figures[{fi}].image"
        if isinstance(img, (str, os.PathLike)):
            p = Path(img)
            if not p.is_file():
                raise FileNotFoundError(f"{where}: no such image file: {p}")
            return _file_data_uri(p) if embed_images else _rel_url(p, path.parent)
        arr = _check_image(img, where)
        if embed_images:
            return _png_data_uri(to_png_bytes(arr))
        target = files_dir / f"s{si:02d}-f{fi:02d}-{_slug(fig.title)}.png"
        pending_pngs.append((target, arr))
        return _rel_url(target, path.parent)

    body: list[str] = []
    body.append(f"<header>\n<h1>{escape(str(title))}</h1>\n")
    if summary:
        body.append(_paragraphs(summary, "summary"))
    body.append("</header>\n")

    if tables:
        body.append('<section class="tables">\n')
        for i, (caption, header, rows) in enumerate(tables):
            body.append(_render_table(caption, header, rows, highlight, i))
        body.append("</section>\n")

    for si, sec in enumerate(sections):
        body.append(f'<section class="figures">\n<h2>{escape(str(sec.title))}</h2>\n')
        if sec.text:
            body.append(_paragraphs(sec.text))
        if sec.figures:
            body.append('<div class="grid">\n')
            for fi, fig in enumerate(sec.figures):
                if not isinstance(fig, Figure):
                    raise WrongTypeError(f"sections[{si}].figures[{fi}]: expected a Figure, got {type(fig).__name__}")
                src = image_src(fig, si, fi)
                t = escape(str(fig.title))
                body.append(f'<figure>\n<img src="{escape(src)}" alt="{t}" loading="lazy">\n<figcaption>')
                body.append(f'<span class="fig-title">{t}</span>')
                if fig.caption:
                    body.append(escape(str(fig.caption)))
                body.append("</figcaption>\n</figure>\n")
            body.append("</div>\n")
        body.append("</section>\n")

    if metadata:
        body.append('<section class="metadata">\n<h2>Metadata</h2>\n<dl class="meta">\n')
        for key, value in metadata.items():
            text = _MISSING if value is None else str(value)
            body.append(f"<dt>{escape(str(key))}</dt><dd>{escape(text)}</dd>\n")
        body.append("</dl>\n</section>\n")

    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="pixelwise">\n'
        f"<title>{escape(str(title))}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "".join(body) + "</body>\n</html>\n"
    )

    # Images first, page last: the page never links to a file that is not there yet.
    for target, arr in pending_pngs:
        save_png(target, arr)
    write_bytes_atomic(path, page.encode("utf-8"))
    return path
