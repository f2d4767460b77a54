"""Readers and writers of pixelwise.data.io.formats: round trips, orientation, corruption."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pixelwise.data.io.files import FormatError
from pixelwise.data.io.formats import (
    image_size,
    read_flo,
    read_flo_header,
    read_npy,
    read_pfm,
    read_pfm_header,
    read_png16,
    read_rgb,
    read_target,
    target_shape,
    write_flo,
    write_npy,
    write_pfm,
    write_png,
    write_png16,
    write_target,
)

RNG = np.random.default_rng(0)


def marked(h=5, w=7, c=None, dtype=np.float32):
    """Random data with a distinctive top-left marker (orientation checks)."""
    shape = (h, w) if c is None else (h, w, c)
    a = RNG.uniform(-3, 3, size=shape).astype(dtype)
    a[0, 0] = 1234.5
    return a


def no_tmp_left(folder):
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]


def expect_format_error(func, path, *match):
    with pytest.raises(FormatError) as info:
        func(path)
    msg = str(info.value)
    assert path.name in msg, msg
    for m in match:
        assert m in msg, msg
    return msg


def hand_pfm(arr_top_to_bottom, *, little: bool, color: bool, scale=1.0) -> bytes:
    """A PFM file built byte by byte (independent of write_pfm)."""
    h, w = arr_top_to_bottom.shape[:2]
    header = (b"PF" if color else b"Pf") + f"\n{w} {h}\n{-scale if little else scale}\n".encode()
    rows = arr_top_to_bottom[::-1]
    return header + np.ascontiguousarray(rows, dtype="<f4" if little else ">f4").tobytes()


# ------------------------------------------------------------------------------------- PFM


@pytest.mark.parametrize("c", [None, 3])
def test_pfm_round_trip_with_inf_nan(tmp_path, c):
    a = marked(6, 9, c)
    a[1, 2] = np.inf
    a[2, 3] = -np.inf
    a[3, 4] = np.nan
    p = tmp_path / "x.pfm"
    write_pfm(p, a)
    b = read_pfm(p)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_array_equal(b, a)  # NaN == NaN for assert_array_equal
    assert b[0, 0].flat[0] == 1234.5
    assert read_pfm_header(p) == (6, 9, 1 if c is None else 3)
    assert no_tmp_left(tmp_path)


def test_pfm_written_bottom_to_top_little_endian(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)  # top row 0 1 2, bottom row 3 4 5
    p = tmp_path / "x.pfm"
    write_pfm(p, a)
    data = p.read_bytes()
    assert data.startswith(b"Pf\n3 2\n-")
    payload = np.frombuffer(data[-24:], "<f4")
    np.testing.assert_array_equal(payload, [3, 4, 5, 0, 1, 2])


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("color", [False, True])
def test_pfm_hand_built_both_endiannesses(tmp_path, little, color):
    a = marked(4, 5, 3 if color else None)
    p = tmp_path / "hand.pfm"
    p.write_bytes(hand_pfm(a, little=little, color=color))
    b = read_pfm(p)
    np.testing.assert_array_equal(b, a)
    assert b.dtype == np.float32 and b.dtype.isnative
    assert b[0, 0].flat[0] == 1234.5  # top-left stays top-left


def test_pfm_w_h_on_separate_lines(tmp_path):
    a = marked(3, 4)
    p = tmp_path / "split.pfm"
    p.write_bytes(b"Pf\n4\n3\n-1.0\n" + np.ascontiguousarray(a[::-1], "<f4").tobytes())
    np.testing.assert_array_equal(read_pfm(p), a)


def test_pfm_corruptions(tmp_path):
    a = marked(4, 5)
    good = hand_pfm(a, little=True, color=False)
    cases = {
        "magic.pfm": (b"P6" + good[2:], "magic"),
        "short.pfm": (good[:-1], "truncated"),
        "long.pfm": (good + b"\x00", "extra bytes"),
        "dims.pfm": (b"Pf\nfive 4\n-1.0\n" + good[-80:], "integer width"),
        "scale.pfm": (b"Pf\n5 4\nabc\n" + good[-80:], "scale"),
        "zero.pfm": (b"Pf\n5 4\n0.0\n" + good[-80:], "scale"),
        "noline.pfm": (b"Pf" + b"x" * 300, "header"),
        "negdim.pfm": (b"Pf\n-5 4\n-1.0\n" + good[-80:], "width"),
        "empty.pfm": (b"", "magic"),
    }
    for fname, (content, match) in cases.items():
        p = tmp_path / fname
        p.write_bytes(content)
        expect_format_error(read_pfm, p, match)
    msg = expect_format_error(read_pfm, tmp_path / "short.pfm")
    assert "80 bytes" in msg and "79 bytes" in msg  # expected vs found byte counts


def test_write_pfm_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="bad.pfm"):
        write_pfm(tmp_path / "bad.pfm", np.zeros((3, 4, 2), np.float32))
    assert not (tmp_path / "bad.pfm").exists()
    write_pfm(tmp_path / "one.pfm", np.ones((3, 4, 1)))
    assert read_pfm(tmp_path / "one.pfm").shape == (3, 4)


# ------------------------------------------------------------------------------------- FLO


def test_flo_round_trip(tmp_path):
    f = marked(5, 8, 2)
    f[2, 2, 0] = 1e10  # "unknown" convention: left untouched
    p = tmp_path / "f.flo"
    write_flo(p, f)
    data = p.read_bytes()
    assert data[:4] == b"PIEH"
    assert struct.unpack("<ii", data[4:12]) == (8, 5)
    assert len(data) == 12 + 5 * 8 * 2 * 4
    g = read_flo(p)
    assert g.shape == (5, 8, 2) and g.dtype == np.float32
    np.testing.assert_array_equal(g, f)
    assert g[2, 2, 0] == np.float32(1e10)
    assert read_flo_header(p) == (5, 8)
    # interleaved u, v, row-major, top row first
    assert struct.unpack("<ff", data[12:20]) == (f[0, 0, 0], f[0, 0, 1])
    assert no_tmp_left(tmp_path)


def test_flo_hand_built(tmp_path):
    h, w = 2, 3
    vals = np.arange(h * w * 2, dtype="<f4")
    p = tmp_path / "hand.flo"
    p.write_bytes(b"PIEH" + struct.pack("<ii", w, h) + vals.tobytes())
    g = read_flo(p)
    assert g[0, 0].tolist() == [0.0, 1.0] and g[0, 1].tolist() == [2.0, 3.0]
    assert g[1, 0].tolist() == [6.0, 7.0]


def test_flo_corruptions(tmp_path):
    good_path = tmp_path / "good.flo"
    write_flo(good_path, marked(3, 4, 2))
    good = good_path.read_bytes()
    cases = {
        "magic.flo": (b"PIEX" + good[4:], "magic"),
        "short.flo": (good[:-1], "truncated"),
        "long.flo": (good + b"\x00", "extra bytes"),
        "header.flo": (good[:7], "header"),
        "zero.flo": (b"PIEH" + struct.pack("<ii", 0, 4) + good[12:], "dimensions"),
        "huge.flo": (b"PIEH" + struct.pack("<ii", 4, 10**6) + good[12:], "dimensions"),
        "neg.flo": (b"PIEH" + struct.pack("<ii", -4, 3) + good[12:], "dimensions"),
    }
    for fname, (content, match) in cases.items():
        p = tmp_path / fname
        p.write_bytes(content)
        expect_format_error(read_flo, p, match)


def test_write_flo_rejects_bad_shape(tmp_path):
    with pytest.raises(ValueError, match="bad.flo"):
        write_flo(tmp_path / "bad.flo", np.zeros((3, 4, 3), np.float32))
    assert not (tmp_path / "bad.flo").exists()


# --------------------------------------------------------------------------- PNG / images


def test_png16_round_trip(tmp_path):
    a = RNG.integers(0, 65536, size=(6, 9), dtype=np.uint16)
    a[0, 0] = 65535
    a[-1, -1] = 0
    p = tmp_path / "d.png"
    write_png16(p, a)
    b = read_png16(p)
    assert b.dtype == np.uint16
    np.testing.assert_array_equal(b, a)
    assert image_size(p) == (6, 9)
    assert no_tmp_left(tmp_path)


def test_write_png16_rejects_non_uint16(tmp_path):
    for bad in (np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.float32), np.zeros((3, 4, 3), np.uint16)):
        with pytest.raises(ValueError, match="d.png"):
            write_png16(tmp_path / "d.png", bad)
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P"])
def test_read_png16_rejects_8bit_and_colour(tmp_path, mode):
    p = tmp_path / f"eight_{mode}.png"
    Image.new(mode, (4, 3)).save(p)
    msg = expect_format_error(read_png16, p, "16-bit")
    assert repr(mode) in msg


def test_read_png16_rejects_jpeg(tmp_path):
    p = tmp_path / "d.jpg"
    Image.new("L", (4, 3)).save(p)
    expect_format_error(read_png16, p, "JPEG")


def test_rgb_png_round_trip_and_orientation(tmp_path):
    a = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    a[0, 0] = (255, 0, 0)  # red top-left marker
    p = tmp_path / "c.png"
    write_png(p, a)
    x = read_rgb(p)
    assert x.shape == (5, 7, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, a / 255.0, atol=1e-7)
    assert x[0, 0].tolist() == [1.0, 0.0, 0.0]
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_read_rgb_gray_alpha_and_16bit(tmp_path):
    g = RNG.integers(0, 256, size=(4, 6), dtype=np.uint8)
    write_png(tmp_path / "g.png", g)
    x = read_rgb(tmp_path / "g.png")
    assert x.shape == (4, 6, 3)
    np.testing.assert_allclose(x[..., 1], g / 255.0, atol=1e-7)
    np.testing.assert_array_equal(x[..., 0], x[..., 2])

    rgba = RNG.integers(0, 256, size=(4, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = read_rgb(tmp_path / "a.png")
    np.testing.assert_allclose(x, rgba[..., :3] / 255.0, atol=1e-7)

    g16 = np.array([[0, 32768, 65535]], np.uint16)
    write_png16(tmp_path / "g16.png", g16)
    x = read_rgb(tmp_path / "g16.png")
    assert x.shape == (1, 3, 3)
    np.testing.assert_allclose(x[0, :, 0], g16[0] / 65535.0, atol=1e-6)


def _png_rgb16(arr: np.ndarray) -> bytes:
    """Hand-built 16-bit-per-channel RGB PNG (filter type 0 on every row)."""
    h, w, _ = arr.shape
    big = arr.astype(">u2")
    raw = b"".join(b"\x00" + big[i].tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_read_rgb_16bit_rgb_is_scaled_to_unit_range(tmp_path):
    a = np.array([[[65535, 0, 32768], [1000, 60000, 256]]], np.uint16)
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png_rgb16(a))
    x = read_rgb(p)
    assert x.shape == (1, 2, 3) and x.max() <= 1.0
    np.testing.assert_allclose(x, a / 65535.0, atol=1 / 255 + 1e-6)  # Pillow keeps 8 bits


def test_read_rgb_garbage_and_truncated(tmp_path):
    p = tmp_path / "garbage.png"
    p.write_bytes(b"this is not an image at all" * 10)
    expect_format_error(read_rgb, p)
    expect_format_error(read_png16, p)
    expect_format_error(image_size, p)
    good = tmp_path / "good.png"
    write_png(good, RNG.integers(0, 256, size=(40, 50, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    expect_format_error(read_rgb, cut)
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)).save(buf, "JPEG")
    jcut = tmp_path / "cut.jpg"
    jcut.write_bytes(buf.getvalue()[:200])
    expect_format_error(read_rgb, jcut)


def test_read_rgb_jpeg(tmp_path):
    p = tmp_path / "flat.jpg"
    Image.new("RGB", (8, 6), (200, 100, 50)).save(p, quality=100)
    x = read_rgb(p)
    assert x.shape == (6, 8, 3)
    np.testing.assert_allclose(x[3, 4], [200 / 255, 100 / 255, 50 / 255], atol=3 / 255)


def test_write_png_rejects(tmp_path):
    for bad in (np.zeros((3, 4), np.uint16), np.zeros((3, 4, 2), np.uint8), np.zeros((3, 4), float)):
        with pytest.raises(ValueError, match="x.png"):
            write_png(tmp_path / "x.png", bad)
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------------- NPY


def test_npy_round_trip_and_errors(tmp_path):
    a = marked(4, 5, 2).astype(np.float64)
    a[1, 1, 0] = np.nan
    p = tmp_path / "a.npy"
    write_npy(p, a)
    b = read_npy(p)
    assert b.dtype == np.float64
    np.testing.assert_array_equal(b, a)
    good = p.read_bytes()
    cases = {
        "magic.npy": (b"XNUMPY" + good[6:], "magic"),
        "short.npy": (good[:-1], "truncated"),
        "long.npy": (good + b"\x00", "extra bytes"),
        "header.npy": (good[:10], "header"),
    }
    for fname, (content, match) in cases.items():
        q = tmp_path / fname
        q.write_bytes(content)
        expect_format_error(read_npy, q, match)
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_format_error(read_npy, obj, "unpickling")
    with pytest.raises(ValueError, match="o.npy"):
        write_npy(tmp_path / "o.npy", np.array([None], dtype=object))


# --------------------------------------------------------------------------------- targets


def test_target_dispatch_round_trips(tmp_path):
    depth = RNG.uniform(0.5, 10, size=(4, 6)).astype(np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = 0.0
    depth[2, 2] = -1.0
    for suffix in (".npy", ".pfm"):
        p = tmp_path / f"d{suffix}"
        write_target(p, depth)
        np.testing.assert_array_equal(read_target(p), depth)
        assert target_shape(p) == (4, 6, 1)
    flow = marked(4, 6, 2)
    write_target(tmp_path / "f.flo", flow)
    np.testing.assert_array_equal(read_target(tmp_path / "f.flo"), flow)
    assert target_shape(tmp_path / "f.flo") == (4, 6, 2)

    p = tmp_path / "d.png"
    write_target(p, depth, scale=1000.0)
    raw = read_png16(p)
    assert raw[0, 0] == 0 and raw[1, 1] == 0 and raw[2, 2] == 0  # NaN, 0, negative -> invalid
    assert raw[3, 3] == round(float(depth[3, 3]) * 1000)
    back = read_target(p, scale=1000.0)
    assert back.dtype == np.float32 and target_shape(p) == (4, 6, 1)
    assert np.isnan(back[0, 0]) and np.isnan(back[1, 1]) and np.isnan(back[2, 2])
    ok = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(back[ok], depth[ok], atol=0.5e-3 + 1e-6)
    back256 = read_target(p, scale=256.0)
    np.testing.assert_allclose(back256[ok], raw[ok] / 256.0, rtol=1e-6)


def test_target_png_range_and_suffix_errors(tmp_path):
    with pytest.raises(ValueError, match="big.png"):
        write_target(tmp_path / "big.png", np.full((2, 2), 70.0), scale=1000.0)
    assert not (tmp_path / "big.png").exists()
    with pytest.raises(ValueError, match="c.png"):
        write_target(tmp_path / "c.png", np.ones((2, 2, 2)))
    write_target(tmp_path / "tiny.png", np.full((2, 2), 1e-5), scale=1000.0)
    assert (read_png16(tmp_path / "tiny.png") == 1).all()  # positive stays valid
    for func in (read_target, target_shape, lambda p: write_target(p, np.zeros((2, 2)))):
        with pytest.raises(ValueError) as info:
            func(tmp_path / "x.tiff")
        assert "x.tiff" in str(info.value) and ".npy" in str(info.value) and ".flo" in str(info.value)


def test_missing_file_is_named(tmp_path):
    for func in (read_pfm, read_flo, read_npy, read_rgb, read_png16):
        with pytest.raises(FileNotFoundError, match="nothere"):
            func(tmp_path / "nothere.bin")
