"""Figure colouring (depth / error / flow) and the self-contained HTML run report."""

from __future__ import annotations

import base64
import colorsys
import io
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import matplotlib
import numpy as np
import pytest
from PIL import Image

from pixelwise.report import (
    INVALID_FLOW_RGB,
    INVALID_RGB,
    Figure,
    Section,
    colorize_error,
    colorize_flow,
    colorize_scalar,
    flow_color_wheel,
    flow_wheel_legend,
    format_cell,
    save_png,
    to_png_bytes,
    write_report,
)

RNG = np.random.default_rng(0)


def cmap_rgb(name: str, t: float) -> np.ndarray:
    return np.asarray(matplotlib.colormaps[name](t, bytes=True)[:3], dtype=np.uint8)


def hue_deg(rgb) -> float:
    r, g, b = (float(c) / 255.0 for c in rgb)
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360.0


def hue_dist(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def saturation(rgb) -> float:
    r, g, b = (float(c) / 255.0 for c in rgb)
    return colorsys.rgb_to_hsv(r, g, b)[1]


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# =========================================================================== colormap


@pytest.mark.parametrize(
    "fn, arg",
    [
        (colorize_scalar, RNG.random((7, 5))),
        (colorize_error, RNG.random((7, 5))),
        (colorize_flow, RNG.standard_normal((7, 5, 2))),
    ],
)
def test_output_shape_and_dtype(fn, arg):
    out = fn(arg)
    assert out.shape == (7, 5, 3)
    assert out.dtype == np.uint8


def test_accepts_float32_int_and_torch_inputs():
    torch = pytest.importorskip("torch")
    a = RNG.random((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(colorize_scalar(torch.from_numpy(a)), colorize_scalar(a))
    assert colorize_scalar(np.arange(24).reshape(4, 6)).shape == (4, 6, 3)
    f = RNG.standard_normal((4, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(colorize_flow(torch.from_numpy(f)), colorize_flow(f))


def test_invalid_pixels_get_the_fixed_grey():
    v = RNG.random((6, 6)) + 1.0
    valid = np.ones((6, 6), bool)
    valid[0, 0] = False
    v[1, 1] = np.nan
    v[2, 2] = np.inf
    v[3, 3] = -np.inf
    for out in (colorize_scalar(v, valid), colorize_error(v, valid)):
        for yx in [(0, 0), (1, 1), (2, 2), (3, 3)]:
            assert tuple(out[yx]) == INVALID_RGB
        # and valid pixels never take the invalid colour
        ok = valid & np.isfinite(v)
        assert not np.all(out[ok] == np.asarray(INVALID_RGB), axis=-1).any()


def test_all_invalid_map_is_all_grey():
    out = colorize_scalar(np.full((3, 4), np.nan))
    assert (out == np.asarray(INVALID_RGB, np.uint8)).all()


def test_vmin_vmax_clip_to_end_colours():
    v = np.array([[-100.0, 0.0, 0.5, 1.0, 100.0]])
    out = colorize_scalar(v, vmin=0.0, vmax=1.0, cmap="viridis")
    lo, hi = cmap_rgb("viridis", 0.0), cmap_rgb("viridis", 1.0)
    np.testing.assert_array_equal(out[0, 0], lo)
    np.testing.assert_array_equal(out[0, 1], lo)
    np.testing.assert_array_equal(out[0, 3], hi)
    np.testing.assert_array_equal(out[0, 4], hi)
    np.testing.assert_array_equal(out[0, 2], cmap_rgb("viridis", 0.5))
    assert not np.array_equal(lo, hi)


def test_default_limits_are_robust_percentiles_of_valid_finite_pixels():
    v = np.linspace(0.0, 10.0, 400).reshape(20, 20)
    valid = np.ones_like(v, bool)
    v[0, :5] = 1e6  # huge values, but masked out
    valid[0, :5] = False
    v[1, 0], v[1, 1], v[1, 2] = np.nan, np.inf, -np.inf  # non-finite, excluded on their own
    good = valid & np.isfinite(v)
    p1, p99 = np.percentile(v[good], [1, 99])

    auto = colorize_scalar(v, valid)
    explicit = colorize_scalar(v, valid, vmin=p1, vmax=p99)
    np.testing.assert_array_equal(auto, explicit)

    # Had the masked outliers been counted, the image would be different.
    p1_all, p99_all = np.percentile(np.where(np.isfinite(v), v, 0.0), [1, 99])
    assert not np.array_equal(auto, colorize_scalar(v, valid, vmin=p1_all, vmax=p99_all))


def test_single_outlier_does_not_wash_out_the_map():
    v = np.tile(np.linspace(0.0, 1.0, 50), (10, 1))
    v[0, 0] = 1e9  # one valid outlier: below the 1% tail, the 99th percentile ignores it
    out = colorize_scalar(v, cmap="gray")
    # the ramp still spans (almost) the full grey range
    assert out[5, 1:].min() < 20 and out[5, 1:].max() > 235


def test_one_sided_limit():
    v = np.linspace(0.0, 1.0, 101).reshape(1, -1)
    out = colorize_scalar(v, vmin=0.5, cmap="gray")
    assert (out[0, :51] == out[0, 0]).all()  # everything <= vmin is the low colour
    assert out[0, -1, 0] > out[0, 60, 0]


def test_constant_map_no_division_by_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out = colorize_scalar(np.full((4, 5), 3.0))
            err = colorize_error(np.zeros((4, 5)))
    assert (out == out[0, 0]).all()
    assert tuple(out[0, 0]) != INVALID_RGB
    np.testing.assert_array_equal(err[0, 0], cmap_rgb("inferno", 0.0))  # zero error = darkest


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="cmap"):
        colorize_scalar(np.zeros((2, 2)), cmap="no-such-colormap")
    with pytest.raises(ValueError, match="vmin"):
        colorize_scalar(np.zeros((2, 2)), vmin=2.0, vmax=1.0)
    with pytest.raises(ValueError, match="valid"):
        colorize_scalar(np.zeros((2, 2)), np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="values"):
        colorize_scalar(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="vmax"):
        colorize_error(np.zeros((2, 2)), vmax=0.0)
    with pytest.raises(ValueError, match="flow"):
        colorize_flow(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="max_magnitude"):
        colorize_flow(np.zeros((2, 3, 2)), max_magnitude=-1)
    with pytest.raises(ValueError, match="size must be >= 3, got 1"):
        flow_wheel_legend(1)


def test_wrong_types_are_type_errors_naming_the_argument():
    with pytest.raises(TypeError, match="cmap"):
        colorize_scalar(np.zeros((2, 2)), cmap=3)
    with pytest.raises(TypeError, match="vmin must be a number"):
        colorize_scalar(np.zeros((2, 2)), vmin="0")
    with pytest.raises(ValueError, match="vmax must be finite"):
        colorize_scalar(np.zeros((2, 2)), vmax=float("inf"))
    with pytest.raises(TypeError, match="vmax must be a number"):
        colorize_error(np.zeros((2, 2)), vmax=True)
    with pytest.raises(ValueError, match="max_magnitude must be finite"):
        colorize_flow(np.zeros((2, 3, 2)), max_magnitude=float("nan"))
    with pytest.raises(TypeError, match="size must be an int"):
        flow_wheel_legend(8.0)
    assert flow_wheel_legend(np.int64(5)).shape == (5, 5, 3)


def test_error_map_zero_is_dark_and_shared_vmax_shares_the_scale():
    a = np.array([[0.0, 0.5, 1.0, 2.0]])
    b = np.array([[0.5, 4.0, 8.0, 0.0]])
    ca = colorize_error(a, vmax=2.0)
    cb = colorize_error(b, vmax=2.0)
    np.testing.assert_array_equal(ca[0, 0], cmap_rgb("inferno", 0.0))
    assert int(ca[0, 0].sum()) < 30  # black-ish
    np.testing.assert_array_equal(ca[0, 1], cb[0, 0])  # same error, same colour
    np.testing.assert_array_equal(cb[0, 1], cmap_rgb("inferno", 1.0))  # beyond vmax clips
    np.testing.assert_array_equal(cb[0, 3], ca[0, 0])
    # signed errors are coloured by magnitude
    np.testing.assert_array_equal(colorize_error(-a, vmax=2.0), ca)


def test_error_default_vmax_is_99th_percentile_of_valid():
    e = np.linspace(0.0, 3.0, 300).reshape(15, 20)
    valid = np.ones_like(e, bool)
    e[0, 0] = 1e5
    valid[0, 0] = False
    p99 = np.percentile(e[valid], 99)
    np.testing.assert_array_equal(colorize_error(e, valid), colorize_error(e, valid, vmax=p99))


# --------------------------------------------------------------------------- flow


def test_color_wheel_construction():
    w = flow_color_wheel()
    assert w.shape == (55, 3) and w.dtype == np.uint8
    # segment starts: red, yellow, green, cyan, blue, magenta
    starts = {0: (255, 0, 0), 15: (255, 255, 0), 21: (0, 255, 0), 25: (0, 255, 255), 36: (0, 0, 255), 49: (255, 0, 255)}
    for i, rgb in starts.items():
        assert tuple(w[i]) == rgb, i
    # every entry is fully saturated: one channel at 255, one at 0
    assert (w.max(axis=1) == 255).all() and (w.min(axis=1) == 0).all()


def test_zero_flow_is_white():
    out = colorize_flow(np.zeros((3, 4, 2)))
    assert (out == 255).all()
    out = colorize_flow(np.zeros((3, 4, 2)), max_magnitude=5.0)
    assert (out == 255).all()


def _axis_colours():
    f = np.zeros((1, 4, 2))
    f[0, 0] = (1.0, 0.0)  # +u, right
    f[0, 1] = (-1.0, 0.0)  # -u, left
    f[0, 2] = (0.0, 1.0)  # +v, down (image coordinates)
    f[0, 3] = (0.0, -1.0)  # -v, up
    out = colorize_flow(f)
    return {k: out[0, i] for i, k in enumerate(["+u", "-u", "+v", "-v"])}


def test_axis_directions_have_the_wheel_colours():
    c = _axis_colours()
    w = flow_color_wheel()
    # From the construction hue = atan2(-v, -u)/pi: +u sits at the wheel's ends (red),
    # -u at entry 27 (cyan-blue), +v half-way through red->yellow (yellow-orange),
    # -v inside blue->magenta (violet).
    assert tuple(c["+u"]) == (255, 0, 0)
    np.testing.assert_array_equal(c["-u"], w[27])
    r, g, b = (int(x) for x in c["+v"])
    assert r == 255 and g > 200 and b == 0
    r, g, b = (int(x) for x in c["-v"])
    assert b == 255 and g == 0 and 50 < r < 130


def test_axis_directions_distinct_and_opposites_complementary():
    c = _axis_colours()
    hues = {k: hue_deg(v) for k, v in c.items()}
    keys = list(hues)
    for i in range(4):
        for j in range(i + 1, 4):
            assert hue_dist(hues[keys[i]], hues[keys[j]]) > 30, (keys[i], keys[j], hues)
    assert hue_dist(hues["+u"], hues["-u"]) > 150
    assert hue_dist(hues["+v"], hues["-v"]) > 150
    # all fully saturated at the maximum magnitude
    assert all(saturation(v) > 0.99 for v in c.values())


def test_saturation_grows_with_magnitude_then_darkens_beyond_max():
    mags = np.linspace(0.0, 1.0, 11)
    angle = 0.7
    f = np.stack([mags * np.cos(angle), mags * np.sin(angle)], axis=-1)[None]
    out = colorize_flow(f, max_magnitude=1.0)[0]
    sats = [saturation(p) for p in out]
    assert sats[0] == 0.0
    assert all(b > a for a, b in zip(sats, sats[1:])), sats
    # same direction keeps the same hue
    assert max(hue_dist(hue_deg(out[-1]), hue_deg(p)) for p in out[3:]) < 5
    # inside the unit circle the brightest channel stays at 255 (desaturated, not darkened)
    assert (out.max(axis=-1) == 255).all()
    # beyond max_magnitude the colour is darkened instead
    far = colorize_flow(np.array([[[3.0 * np.cos(angle), 3.0 * np.sin(angle)]]]), max_magnitude=1.0)[0, 0]
    assert int(far.max()) < 200
    assert hue_dist(hue_deg(far), hue_deg(out[-1])) < 5


def test_default_max_magnitude_is_largest_valid_and_scale_invariant():
    f = RNG.standard_normal((8, 9, 2))
    valid = np.ones((8, 9), bool)
    f[0, 0] = (500.0, 0.0)  # huge, but invalid
    valid[0, 0] = False
    f[1, 1] = (np.nan, 0.0)
    out = colorize_flow(f, valid)
    assert tuple(out[0, 0]) == INVALID_FLOW_RGB
    assert tuple(out[1, 1]) == INVALID_FLOW_RGB
    ok = valid & np.isfinite(f).all(-1)
    mag = np.hypot(f[..., 0], f[..., 1])
    np.testing.assert_array_equal(out, colorize_flow(f, valid, max_magnitude=mag[ok].max()))
    np.testing.assert_array_equal(colorize_flow(f * 4.0, valid), out)
    # the fastest valid pixel is fully saturated
    y, x = np.unravel_index(np.where(ok, mag, -1).argmax(), mag.shape)
    assert saturation(out[y, x]) > 0.99


def test_flow_wheel_legend():
    leg = flow_wheel_legend(65)
    assert leg.shape == (65, 65, 3) and leg.dtype == np.uint8
    assert tuple(leg[32, 32]) == (255, 255, 255)  # centre: no motion
    assert tuple(leg[0, 0]) == (255, 255, 255)  # corner: outside the disc
    assert tuple(leg[32, 64]) == (255, 0, 0)  # right edge: +u
    np.testing.assert_array_equal(leg[32, 0], flow_color_wheel()[27])  # left edge: -u
    assert flow_wheel_legend().shape == (64, 64, 3)


# --------------------------------------------------------------------------- PNG


def test_png_round_trip_and_atomic_save(tmp_path):
    img = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(to_png_bytes(img)), img)
    p = save_png(tmp_path / "sub" / "a.png", img)
    assert p == tmp_path / "sub" / "a.png"
    np.testing.assert_array_equal(np.asarray(Image.open(p)), img)
    with open(p, "rb") as reader:
        save_png(p, img[:2])  # replace by rename: the open handle still sees the old image
        np.testing.assert_array_equal(decode_png(reader.read()), img)
    assert np.asarray(Image.open(p)).shape == (2, 7, 3)
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.png"]
    with pytest.raises(ValueError, match="uint8"):
        to_png_bytes(img.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_png_bytes(np.zeros((2, 2, 5), np.uint8))


# =========================================================================== report


class PageParser(HTMLParser):
    """Checks tag balance and collects images, table cells and metadata."""

    VOID = {"img", "meta", "br", "hr", "link", "input", "source", "col", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.imgs: list[dict] = []
        self.rows: list[list[tuple[str, bool]]] = []
        self._cell: list | None = None
        self._bold = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
            self._bold = False
        elif tag == "strong" and self._cell is not None:
            self._bold = True

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            self.errors.append(f"end tag for void element {tag}")
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}>, open: {self.stack[-3:]}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._bold))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> PageParser:
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")
    p = PageParser()
    p.feed(text)
    p.close()
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed tags: {p.stack}"
    return p


def data_uri_bytes(src: str) -> tuple[str, bytes]:
    assert src.startswith("data:"), src[:40]
    head, payload = src.split(",", 1)
    assert head.endswith(";base64")
    return head[5:-7], base64.b64decode(payload)


TABLE = (
    "Depth metrics",
    ["method", "rmse", "delta1", "params"],
    [
        ["bilinear", 0.512345, 0.81, 0],
        ["pac", 0.2345678, 0.9312, 12345],
        ["jbu", 0.300001, None, 7],
    ],
)


def make_report(tmp_path: Path, name="run.html", **kw) -> Path:
    img_a = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    img_b = colorize_scalar(RNG.random((9, 13)))
    kw.setdefault("tables", [TABLE])
    kw.setdefault("sections", [Section("Depth", [Figure("input", img_a, "the RGB"), Figure("prediction", img_b)], "text")])
    kw.setdefault("metadata", {"pixelwise": "0.1.0", "command": "pixelwise train --lr 1e-3"})
    return write_report(tmp_path / name, title="Run 7", summary="A summary.\n\nSecond paragraph.", **kw)


def test_report_is_balanced_html_with_formatted_tables(tmp_path):
    out = make_report(tmp_path, highlight={"rmse": "min", "delta1": "max"})
    assert out == tmp_path / "run.html" and out.is_file()
    p = parse(out)
    assert p.counts.get("table") == 1 and p.counts.get("img") == 2
    assert p.counts.get("tr") == 4 and p.counts.get("td") == 12 and p.counts.get("th") == 4
    assert p.counts.get("dl") == 1 and p.counts.get("dt") == 2 and p.counts.get("dd") == 2
    assert "script" not in p.counts and "link" not in p.counts  # no JS, no external resources
    header, *rows = p.rows
    assert [c for c, _ in header] == ["method", "rmse", "delta1", "params"]
    cells = [[c for c, _ in r] for r in rows]
    assert cells == [
        ["bilinear", "0.5123", "0.8100", "0"],
        ["pac", "0.2346", "0.9312", "12345"],
        ["jbu", "0.3000", "\u2014", "7"],
    ]
    text = "".join(p.text)
    assert "Run 7" in text and "Second paragraph." in text and "pixelwise train --lr 1e-3" in text


def test_highlight_marks_best_cells_bold(tmp_path):
    p = parse(make_report(tmp_path, highlight={"rmse": "min", "delta1": "max", "params": "max"}))
    _, *rows = p.rows
    bold = {(i, j) for i, r in enumerate(rows) for j, (_, b) in enumerate(r) if b}
    # rmse min -> pac (row 1); delta1 max -> pac (row 1, None ignored); params max -> pac
    assert bold == {(1, 1), (1, 2), (1, 3)}
    p = parse(make_report(tmp_path, highlight={"rmse": "max", "params": "min"}))
    _, *rows = p.rows
    bold = {(i, j) for i, r in enumerate(rows) for j, (_, b) in enumerate(r) if b}
    assert bold == {(0, 1), (0, 3)}
    p = parse(make_report(tmp_path))  # no highlight asked for: nothing bold
    assert not any(b for r in p.rows for _, b in r)


def test_highlight_ties_and_bad_arguments(tmp_path):
    t = ("ties", ["m", "err"], [["a", 1.0], ["b", 1], ["c", 2.0], ["d", "n/a"]])
    p = parse(make_report(tmp_path, tables=[t], highlight={"err": "min"}))
    bold = [b for r in p.rows[1:] for (_, b) in r[1:]]
    assert bold == [True, True, False, False]
    with pytest.raises(ValueError, match=r"highlight\['rmse'\] must be one of min, max; got 'best'"):
        make_report(tmp_path, highlight={"rmse": "best"})
    with pytest.raises(ValueError, match="highlight"):
        make_report(tmp_path, highlight={"no_such_column": "min"})
    with pytest.raises(ValueError, match="row 0"):
        make_report(tmp_path, tables=[("bad", ["a", "b"], [[1, 2, 3]])])


def test_format_cell():
    assert format_cell(None) == "\u2014"
    assert format_cell(3) == "3"
    assert format_cell(np.int64(12345)) == "12345"
    assert format_cell(0.123456) == "0.1235"
    assert format_cell(np.float32(0.5)) == "0.5000"
    assert format_cell(12.3456) == "12.35"
    assert format_cell(1234.56) == "1235"
    assert format_cell(12345.6) == "12346"
    assert format_cell(1.23456e-5) == "1.235e-05"
    assert format_cell(2.5e7) == "2.500e+07"
    assert format_cell(0.0) == "0"
    assert format_cell(float("nan")) == "nan"
    assert format_cell("text") == "text"


def test_embedded_images_decode_back_to_the_same_array(tmp_path):
    a = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    b = colorize_flow(RNG.standard_normal((6, 8, 2)))
    png_file = tmp_path / "ext.png"
    save_png(png_file, a[::-1])
    sec = Section("S", [Figure("a", a), Figure("b", b), Figure("file", png_file)])
    out = make_report(tmp_path, sections=[sec])
    p = parse(out)
    srcs = [i["src"] for i in p.imgs]
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for src, expect in zip(srcs, [a, b, a[::-1]]):
        np.testing.assert_array_equal(decode_png(data_uri_bytes(src)[1]), expect)
    assert data_uri_bytes(srcs[2])[1] == png_file.read_bytes()
    assert [i["alt"] for i in p.imgs] == ["a", "b", "file"]
    assert not (tmp_path / "run_files").exists()  # nothing written beside an embedded report
    # the report survives being moved on its own
    moved = tmp_path / "elsewhere" / "moved.html"
    moved.parent.mkdir()
    out.rename(moved)
    p2 = parse(moved)
    np.testing.assert_array_equal(decode_png(data_uri_bytes(p2.imgs[0]["src"])[1]), a)


def test_external_files_mode_writes_pngs_and_relative_links(tmp_path):
    a = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    b = colorize_error(RNG.random((5, 4)))
    ext = tmp_path / "assets dir" / "photo.png"  # a space: the link must be URL-encoded
    save_png(ext, a[:, ::-1])
    sections = [
        Section("First", [Figure("RGB input", a), Figure("from file", ext)]),
        Section("Second", [Figure("RGB input", b)]),  # same title in another section: no clash
    ]
    out = make_report(tmp_path / "reports", name="r1.html", sections=sections, embed_images=False)
    p = parse(out)
    srcs = [i["src"] for i in p.imgs]
    assert len(srcs) == 3
    assert not any(s.startswith(("data:", "/", "file:", "http")) for s in srcs), srcs
    assert not any(" " in s for s in srcs), srcs  # URL-encoded (the asset folder has a space)
    resolved = [(out.parent / unquote(s)).resolve() for s in srcs]
    assert all(r.is_file() for r in resolved), srcs
    files_dir = out.parent / "r1_files"
    assert resolved[0].parent == files_dir.resolve() and resolved[2].parent == files_dir.resolve()
    assert resolved[1] == ext.resolve()
    assert len({resolved[0], resolved[2]}) == 2
    np.testing.assert_array_equal(decode_png(resolved[0].read_bytes()), a)
    np.testing.assert_array_equal(decode_png(resolved[1].read_bytes()), a[:, ::-1])
    np.testing.assert_array_equal(decode_png(resolved[2].read_bytes()), b)
    assert sorted(x.suffix for x in files_dir.iterdir()) == [".png", ".png"]


def test_missing_image_file_and_bad_array_raise(tmp_path):
    with pytest.raises(FileNotFoundError):
        make_report(tmp_path, sections=[Section("S", [Figure("x", tmp_path / "nope.png")])])
    with pytest.raises(ValueError, match="uint8"):
        make_report(tmp_path, sections=[Section("S", [Figure("x", np.zeros((4, 4, 3)))])])


def test_caller_text_is_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    sec = Section(evil, [Figure(evil, np.zeros((2, 2, 3), np.uint8), caption=evil)], text=evil)
    out = write_report(
        tmp_path / "e.html",
        title=evil,
        summary=evil,
        tables=[(evil, ["col", evil], [[evil, 1.5]])],
        sections=[sec],
        metadata={evil: evil},
        highlight={evil: "max"},
    )
    raw = out.read_text(encoding="utf-8")
    assert "<script" not in raw.lower()
    assert raw.count("&lt;script&gt;") >= 9  # title x2, summary, caption, header, cell, section, fig, meta
    p = parse(out)
    assert "script" not in p.counts
    assert evil in "".join(p.text)  # the text itself survives, as text
    assert p.imgs[0]["alt"] == evil


def test_atomic_write_replaces_whole_and_leaves_no_temp_files(tmp_path):
    long_sections = [Section(f"Section {i}", [Figure(f"f{i}", RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))]) for i in range(6)]
    out = make_report(tmp_path, sections=long_sections)
    first = out.read_bytes()
    with open(out, "rb") as reader:  # a reader that opened the old report before the rewrite
        out2 = write_report(out, title="Short one")
        # replaced by a rename, not rewritten in place: the open file still holds the old page
        assert reader.read() == first
    second = out2.read_bytes()
    assert out2 == out and len(second) < len(first)
    assert b"Run 7" not in second and b"Section 3" not in second
    assert second.rstrip().endswith(b"</html>") and second.count(b"<html") == 1
    parse(out)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["run.html"]

    # A failure half-way through building leaves the previous report byte-for-byte intact.
    with pytest.raises(ValueError):
        write_report(out, title="broken", sections=[Section("S", [Figure("bad", np.zeros((3, 3), np.float64))])])
    assert out.read_bytes() == second
    assert sorted(x.name for x in tmp_path.iterdir()) == ["run.html"]
