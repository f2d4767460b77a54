"""Readers refuse files they must not read: FIFOs, devices, directories, files larger than their
format allows, symbolic links out of a dataset folder, scans whose label file has another count.
Every error names the file."""

from __future__ import annotations

import os
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from pixelwise.data.datasets.bsds import find_bsds, read_bsds_ground_truth
from pixelwise.data.datasets.cityscapes import find_cityscapes, read_cityscapes_label
from pixelwise.data.datasets.folder import FolderDataset
from pixelwise.data.datasets.lidar_scans import load_scan
from pixelwise.data.datasets.middlebury import Middlebury
from pixelwise.data.datasets.nyu import NYUDepthV2
from pixelwise.data.datasets.semantic_kitti import LabelMap, ScanRecord, find_scans, read_scan_record
from pixelwise.data.datasets.sintel import Sintel
from pixelwise.data.datasets.upsampling_sources import open_dataset
from pixelwise.data.datasets.voc_instances import VocInstances, find_voc
from pixelwise.data.datasets.voc_segmentation import VocSegmentation, find_voc_segmentation, read_voc_label
from pixelwise.data.io import formats, matlab, ply
from pixelwise.data.io.files import FormatError, OutsideRootError, check_regular_file, check_within_root
from pixelwise.data.io.formats import (
    image_size,
    read_flo,
    read_flo_header,
    read_npy,
    read_npy_header,
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
)
from pixelwise.data.io.matlab import load_mat
from pixelwise.data.io.palette_png import read_palette_png, write_palette_png
from pixelwise.data.io.ply import read_ply, write_ply
from pixelwise.data.io.semantic_kitti import (
    MAX_LABEL_BYTES,
    MAX_SCAN_BYTES,
    label_count,
    read_label,
    read_scan,
    write_label,
    write_scan,
)


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that opens a FIFO blocks forever: fail after 20 s instead of hanging the suite."""

    def fail(signum, frame):
        raise TimeoutError("a reader blocked (opened a FIFO or device?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _raises_naming(exc_type, path, *words):
    """Context manager: ``exc_type`` whose message names ``path`` and holds every word."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc_type)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            message = str(self.info.value)
            assert str(path) in message, message
            for word in words:
                assert word in message, message
            return suppressed

    return _Check()


# --- the shared check -------------------------------------------------------------------------


def test_check_regular_file(tmp_path):
    fifo = tmp_path / "pipe.pfm"
    os.mkfifo(fifo)
    with _raises_naming(FormatError, fifo, "FIFO"):
        check_regular_file(fifo, "PFM", 100)
    with _raises_naming(FormatError, "/dev/null", "character device"):
        check_regular_file("/dev/null", "PFM", 100)
    with _raises_naming(FormatError, tmp_path, "directory"):
        check_regular_file(tmp_path, "PFM", 100)
    big = tmp_path / "big.pfm"
    big.write_bytes(b"\0" * 101)
    with _raises_naming(FormatError, big, "101 bytes", "100 bytes at most"):
        check_regular_file(big, "PFM", 100)
    assert check_regular_file(big, "PFM", 101) == 101 and check_regular_file(big, "PFM", None) == 101
    with pytest.raises(FileNotFoundError, match="nothere"):
        check_regular_file(tmp_path / "nothere.pfm", "PFM", 100)


# --- every reader refuses FIFOs, devices and directories ---------------------------------------


READERS = {
    "read_pfm": (".pfm", read_pfm),
    "read_pfm_header": (".pfm", read_pfm_header),
    "read_flo": (".flo", read_flo),
    "read_flo_header": (".flo", read_flo_header),
    "read_npy": (".npy", read_npy),
    "read_npy_header": (".npy", read_npy_header),
    "read_target": (".pfm", read_target),
    "target_shape": (".png", target_shape),
    "read_rgb": (".jpg", read_rgb),
    "image_size": (".png", image_size),
    "read_png16": (".png", read_png16),
    "read_palette_png": (".png", read_palette_png),
    "read_cityscapes_label": (".png", lambda p: read_cityscapes_label(p, "labelIds")),
    "read_scan": (".bin", read_scan),
    "read_label": (".label", read_label),
    "label_count": (".label", label_count),
    "read_ply": (".ply", read_ply),
    "load_mat": (".mat", load_mat),
    "read_voc_label (.mat)": (".mat", read_voc_label),
    "read_bsds_ground_truth": (".mat", read_bsds_ground_truth),
    "LabelMap.from_yaml": (".yaml", LabelMap.from_yaml),
    "NYUDepthV2": (".mat", NYUDepthV2),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_readers_refuse_fifos(tmp_path, name):
    suffix, reader = READERS[name]
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    with _raises_naming(FormatError, fifo, "FIFO"):
        reader(fifo)


@pytest.mark.parametrize("name", sorted(READERS))
def test_readers_refuse_devices_and_directories(tmp_path, name):
    suffix, reader = READERS[name]
    zero = tmp_path / f"zero{suffix}"  # a link to /dev/zero: followed, then refused
    zero.symlink_to("/dev/zero")
    with _raises_naming(FormatError, zero, "character device"):
        reader(zero)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with _raises_naming(FormatError, folder, "directory"):
        reader(folder)


def test_dev_null_is_not_an_empty_file():
    with _raises_naming(FormatError, "/dev/null", "character device"):
        read_scan("/dev/null")
    with _raises_naming(FormatError, "/dev/zero", "character device"):
        read_label("/dev/zero")


# --- sizes the format does not allow ----------------------------------------------------------


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # no data written: instant, and takes no disk space
    return path


def test_oversized_scan_and_label_are_refused_unread(tmp_path):
    scan = _sparse(tmp_path / "huge.bin", MAX_SCAN_BYTES + 16)
    with _raises_naming(FormatError, scan, str(MAX_SCAN_BYTES + 16), "at most"):
        read_scan(scan)
    label = _sparse(tmp_path / "huge.label", MAX_LABEL_BYTES + 4)
    for reader in (read_label, label_count):
        with _raises_naming(FormatError, label, "at most"):
            reader(label)
    assert MAX_SCAN_BYTES >= 10 * 130_000 * 16 and MAX_LABEL_BYTES >= 10 * 130_000 * 4


def test_garbage_sized_scan_and_label(tmp_path):
    odd = tmp_path / "odd.label"
    odd.write_bytes(b"\0" * 10)
    with _raises_naming(FormatError, odd, "multiple of 4"):
        label_count(odd)
    odd_scan = tmp_path / "odd.bin"
    odd_scan.write_bytes(b"\0" * 33)
    with _raises_naming(FormatError, odd_scan, "multiple of 16"):
        read_scan(odd_scan)


def test_array_headers_promising_too_much_are_refused(tmp_path):
    pfm = tmp_path / "huge.pfm"
    pfm.write_bytes(b"Pf\n60000 60000\n-1.0\n" + b"\0" * 16)  # 14.4 GB promised
    with _raises_naming(FormatError, pfm, "allowed"):
        read_pfm(pfm)
    flo = tmp_path / "huge.flo"
    flo.write_bytes(np.array([202021.25], "<f4").tobytes() + np.array([60000, 60000], "<i4").tobytes() + b"\0" * 8)
    with _raises_naming(FormatError, flo, "allowed"):
        read_flo(flo)
    npy = tmp_path / "huge.npy"
    with open(npy, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
        fh.write(b"\0" * 8)
    with _raises_naming(FormatError, npy, "allowed"):
        read_npy(npy)


def test_payload_must_match_the_header(tmp_path):
    pfm = tmp_path / "garbage.pfm"
    pfm.write_bytes(b"Pf\n4 4\n-1.0\n" + os.urandom(1 << 20))  # 64 bytes promised, 1 MiB there
    with _raises_naming(FormatError, pfm, "extra bytes"):
        read_pfm(pfm)
    flo = tmp_path / "short.flo"
    write_flo(flo, np.zeros((4, 4, 2), np.float32))
    flo.write_bytes(flo.read_bytes()[:-4])
    with _raises_naming(FormatError, flo, "truncated"):
        read_flo(flo)


def test_array_files_over_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "MAX_ARRAY_BYTES", 64)
    write_pfm(tmp_path / "a.pfm", np.zeros((5, 5), np.float32))  # 100 bytes of payload
    write_npy(tmp_path / "a.npy", np.zeros(20, np.float32))
    for path, reader in ((tmp_path / "a.pfm", read_pfm), (tmp_path / "a.npy", read_npy)):
        with _raises_naming(FormatError, path, "64"):
            reader(path)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header promises width x height 1-bit pixels; the data is a stub."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bombs_are_refused_whatever_pillow_is_told(tmp_path, monkeypatch):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)  # 900 M pixels in 100 bytes
    for reader in (read_rgb, image_size, read_palette_png, read_png16):
        with _raises_naming(FormatError, bomb):
            reader(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own guard switched off
    for reader in (read_rgb, image_size, read_palette_png):
        with _raises_naming(FormatError, bomb, "pixels", str(formats.MAX_IMAGE_PIXELS)):
            reader(bomb)
    small = tmp_path / "small.png"
    write_png(small, np.zeros((10, 10), np.uint8))
    monkeypatch.setattr(formats, "MAX_IMAGE_PIXELS", 99)
    with _raises_naming(FormatError, small, "100 pixels"):
        read_rgb(small)
    monkeypatch.setattr(formats, "MAX_IMAGE_PIXELS", 100)
    assert read_rgb(small).shape == (10, 10, 3)
    monkeypatch.setattr(formats, "MAX_IMAGE_FILE_BYTES", 10)
    with _raises_naming(FormatError, small, "at most"):
        image_size(small)


def test_ply_and_mat_over_the_limit(tmp_path, monkeypatch):
    write_ply(tmp_path / "a.ply", np.zeros((4, 3)), np.zeros((4, 3), np.uint8))
    scipy.io.savemat(tmp_path / "a.mat", {"x": np.zeros(100)})
    monkeypatch.setattr(ply, "MAX_PLY_BYTES", 10)
    monkeypatch.setattr(matlab, "MAX_MAT_BYTES", 10)
    with _raises_naming(FormatError, tmp_path / "a.ply", "at most"):
        read_ply(tmp_path / "a.ply")
    with _raises_naming(FormatError, tmp_path / "a.mat", "at most"):
        load_mat(tmp_path / "a.mat")


# --- symbolic links out of a dataset folder ---------------------------------------------------


def test_check_within_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "inside").symlink_to(root / "sub")
    (root / "out").symlink_to(outside)
    check_within_root(root / "inside", root)
    check_within_root(root / "sub", root)
    with _raises_naming(OutsideRootError, root / "out", os.path.realpath(outside), "follow_symlinks=True"):
        check_within_root(root / "out", root)
    check_within_root(root / "out", root, follow_symlinks=True)
    alias = tmp_path / "alias"  # the root itself may be a link
    alias.symlink_to(root)
    check_within_root(alias / "inside", alias)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutsideRootError):
        check_within_root(root / "dangling", root)


def _scan(path: Path, n: int = 3) -> None:
    write_scan(path, np.ones((n, 4), np.float32))


def test_find_scans_refuses_links_out_of_the_root(tmp_path):
    root, outside = tmp_path / "kitti", tmp_path / "elsewhere"
    _scan(root / "sequences" / "00" / "velodyne" / "000000.bin")
    _scan(outside / "07" / "velodyne" / "000000.bin")
    link = root / "sequences" / "07"
    link.symlink_to(outside / "07")
    with _raises_naming(OutsideRootError, link, os.path.realpath(outside / "07")):
        find_scans(root)
    assert len(find_scans(root, follow_symlinks=True)) == 2
    assert len(find_scans(root, sequences=["00"])) == 1  # the link is not part of what was asked
    # a link that stays inside the root is fine
    (root / "sequences" / "08").symlink_to(root / "sequences" / "00")
    assert len(find_scans(root, sequences=[0, 8])) == 2

    plain, file_outside = tmp_path / "plain", tmp_path / "stray.bin"
    _scan(plain / "a.bin")
    _scan(file_outside)
    (plain / "b.bin").symlink_to(file_outside)
    with _raises_naming(OutsideRootError, plain / "b.bin", os.path.realpath(file_outside)):
        find_scans(plain)
    assert [r.frame for r in find_scans(plain, follow_symlinks=True)] == ["a", "b"]

    seq = tmp_path / "seq"  # a label file linked out of the root
    _scan(seq / "velodyne" / "000000.bin")
    write_label(tmp_path / "stray.label", np.zeros(3, np.int64))
    (seq / "labels").mkdir()
    (seq / "labels" / "000000.label").symlink_to(tmp_path / "stray.label")
    for where in (seq, seq / "velodyne", seq / "velodyne" / "000000.bin"):
        with _raises_naming(OutsideRootError, seq / "labels" / "000000.label"):
            find_scans(where)
        (record,) = find_scans(where, follow_symlinks=True)
        assert record.label_path == seq / "labels" / "000000.label"


def test_folder_readers_refuse_links_out_of_the_root(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    # FolderDataset (and open_dataset's folder:<root>)
    root = tmp_path / "folder"
    write_png(outside / "a.png", np.zeros((4, 5, 3), np.uint8))
    write_npy(root / "targets" / "a.npy", np.ones((4, 5), np.float32))
    (root / "images").mkdir()
    (root / "images" / "a.png").symlink_to(outside / "a.png")
    with _raises_naming(OutsideRootError, root / "images" / "a.png", os.path.realpath(outside / "a.png")):
        FolderDataset(root)
    with _raises_naming(OutsideRootError, root / "images" / "a.png"):
        open_dataset(f"folder:{root}", "depth")
    assert len(FolderDataset(root, follow_symlinks=True)) == 1
    assert len(open_dataset(f"folder:{root}", "depth", follow_symlinks=True)) == 1

    # Middlebury: a scene folder linked from elsewhere
    scene = outside / "scene"
    write_png(scene / "im0.png", np.zeros((4, 5, 3), np.uint8))
    write_pfm(scene / "disp0GT.pfm", np.ones((4, 5), np.float32))
    mid = tmp_path / "middlebury"
    mid.mkdir()
    (mid / "scene").symlink_to(scene)
    with _raises_naming(OutsideRootError, mid / "scene", os.path.realpath(scene)):
        Middlebury(mid)
    assert len(Middlebury(mid, follow_symlinks=True)) == 1

    # Sintel: one flow file linked from elsewhere
    sintel = tmp_path / "sintel"
    for i in (1, 2):
        write_png(sintel / "training" / "clean" / "alley" / f"frame_{i:04d}.png", np.zeros((4, 5, 3), np.uint8))
    write_flo(outside / "f.flo", np.zeros((4, 5, 2), np.float32))
    (sintel / "training" / "flow" / "alley").mkdir(parents=True)
    flo = sintel / "training" / "flow" / "alley" / "frame_0001.flo"
    flo.symlink_to(outside / "f.flo")
    with _raises_naming(OutsideRootError, flo, os.path.realpath(outside / "f.flo")):
        Sintel(sintel)
    assert len(Sintel(sintel, follow_symlinks=True)) == 1


def _rgb_file(path: Path, suffix_format: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(path, format=suffix_format)


def test_voc_cityscapes_bsds_refuse_links_out_of_the_root(tmp_path):
    outside = tmp_path / "outside"
    _rgb_file(outside / "x.jpg")
    labels = np.zeros((4, 5), np.uint8)

    voc = tmp_path / "VOC2012"
    write_palette_png(voc / "SegmentationClass" / "a.png", labels)
    write_palette_png(voc / "SegmentationObject" / "a.png", labels)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("a\n")
    (voc / "JPEGImages").mkdir()
    image = voc / "JPEGImages" / "a.jpg"
    image.symlink_to(outside / "x.jpg")
    for scan in (find_voc_segmentation, find_voc, VocSegmentation, VocInstances):
        with _raises_naming(OutsideRootError, image, os.path.realpath(outside / "x.jpg")):
            scan(voc)
        assert len(scan(voc, follow_symlinks=True)) == 1

    city = tmp_path / "cityscapes"
    _rgb_file(city / "leftImg8bit" / "val" / "bonn" / "bonn_1_leftImg8bit.png", "PNG")
    write_palette_png(outside / "ids.png", labels)
    (city / "gtFine" / "val" / "bonn").mkdir(parents=True)
    label = city / "gtFine" / "val" / "bonn" / "bonn_1_gtFine_labelIds.png"
    label.symlink_to(outside / "ids.png")
    with _raises_naming(OutsideRootError, label, os.path.realpath(outside / "ids.png")):
        find_cityscapes(city)
    assert find_cityscapes(city, follow_symlinks=True) == [(city / "leftImg8bit" / "val" / "bonn" /
                                                             "bonn_1_leftImg8bit.png", label)]

    bsds = tmp_path / "BSDS500" / "data"
    _rgb_file(bsds / "images" / "test" / "1.jpg")
    (outside / "gt").mkdir()
    scipy.io.savemat(outside / "gt" / "1.mat", {"groundTruth": np.zeros((1, 1), object)})
    (bsds / "groundTruth").mkdir()
    (bsds / "groundTruth" / "test").symlink_to(outside / "gt")
    with _raises_naming(OutsideRootError, bsds / "groundTruth" / "test", os.path.realpath(outside / "gt")):
        find_bsds(tmp_path / "BSDS500")
    assert [r.name for r in find_bsds(tmp_path / "BSDS500", follow_symlinks=True)] == ["1"]


# --- a scan and its label file must agree -----------------------------------------------------


def test_scan_and_label_counts_must_agree(tmp_path):
    seq = tmp_path / "sequences" / "00"
    _scan(seq / "velodyne" / "000000.bin", n=10)
    write_label(seq / "labels" / "000000.label", np.full(9, 40, np.int64))
    (record,) = find_scans(tmp_path)
    for read in (read_scan_record, lambda r: load_scan(r, LabelMap.default()),
                 lambda r: load_scan(r, LabelMap.default(), require_labels=False)):
        with _raises_naming(FormatError, record.scan_path, str(record.label_path), "10 points", "9 labels"):
            read(record)
    # without a label file (prediction of unlabelled scans) nothing is checked
    unlabelled = ScanRecord(record.sequence, record.frame, record.scan_path, None)
    assert read_scan_record(unlabelled).shape == (10, 4)
    # only the size of the label file is looked at: garbage ids of the right count pass
    (seq / "labels" / "000000.label").write_bytes(b"\xff" * 40)
    assert read_scan_record(record).shape == (10, 4)
    # a FIFO beside the scan is refused, not waited on
    (seq / "labels" / "000000.label").unlink()
    os.mkfifo(seq / "labels" / "000000.label")
    with _raises_naming(FormatError, seq / "labels" / "000000.label", "FIFO"):
        read_scan_record(record)
