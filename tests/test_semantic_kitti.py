"""SemanticKITTI files, label map and folder layout (pixelwise.data.datasets.semantic_kitti)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixelwise.data.io.files import FormatError
from pixelwise.data.datasets.semantic_kitti import (
    CLASS_NAMES,
    IGNORE_INDEX,
    NUM_CLASSES,
    SPLITS,
    LabelMap,
    ScanRecord,
    find_scans,
    prediction_path,
)
from pixelwise.data.io.semantic_kitti import read_label, read_scan, write_label, write_scan

ROOT = Path("/work/shared/data/semantic-kitti")
YAML = ROOT / "semantic-kitti.yaml"
SEQ = ROOT / "sequences" / "00"
FRAMES = ("000000", "000001", "000002")
needs_data = pytest.mark.skipif(not (SEQ / "velodyne").is_dir(), reason="SemanticKITTI sample absent")
needs_yaml = pytest.mark.skipif(not YAML.is_file(), reason="semantic-kitti.yaml absent")

RNG = np.random.default_rng(0)


# --- constants and label map -------------------------------------------------------------


def test_constants():
    assert NUM_CLASSES == 20 == len(CLASS_NAMES)
    assert CLASS_NAMES[IGNORE_INDEX] == "unlabeled"
    assert CLASS_NAMES[1] == "car" and CLASS_NAMES[-1] == "traffic-sign"
    assert SPLITS["valid"] == (8,)
    assert 8 not in SPLITS["train"] and len(SPLITS["train"]) == 10 and len(SPLITS["test"]) == 11


def test_default_names_and_rgb_colors():
    lm = LabelMap.default()
    assert lm is LabelMap.default()  # cached
    assert lm.names == CLASS_NAMES and lm.num_classes == 20
    assert lm.colors.dtype == np.uint8 and lm.colors.shape == (20, 3)
    # The yaml stores BGR [245, 150, 100] for car.
    assert lm.colors[CLASS_NAMES.index("car")].tolist() == [100, 150, 245]
    assert lm.colors[CLASS_NAMES.index("person")].tolist() == [255, 30, 30]
    assert lm.colors[CLASS_NAMES.index("vegetation")].tolist() == [0, 175, 0]
    with pytest.raises(ValueError):
        lm.colors[0, 0] = 1  # read-only


@needs_yaml
def test_default_equals_official_yaml():
    ref = LabelMap.from_yaml(YAML)
    lm = LabelMap.default()
    assert lm.names == ref.names
    np.testing.assert_array_equal(lm.colors, ref.colors)
    assert lm.learning_map == ref.learning_map
    assert lm.learning_map_inv == ref.learning_map_inv
    assert lm.raw_names == ref.raw_names
    assert lm.raw_frequencies == ref.raw_frequencies
    assert lm == ref and hash(lm) == hash(ref)


@needs_yaml
def test_from_yaml_missing_key_and_bad_yaml(tmp_path):
    text = YAML.read_text()
    cut = tmp_path / "no_inv.yaml"
    cut.write_text(text.split("learning_map_inv:")[0])
    with pytest.raises(FormatError, match=r"no_inv\.yaml.*learning_map_inv"):
        LabelMap.from_yaml(cut)
    broken = tmp_path / "broken.yaml"
    broken.write_text("labels: [unclosed")
    with pytest.raises(FormatError, match=r"broken\.yaml"):
        LabelMap.from_yaml(broken)
    # An inverse entry that does not map back is inconsistent.
    bad = tmp_path / "bad_inv.yaml"
    bad.write_text(text.replace('  1: 10     # "car"', '  1: 11     # "car"'))
    with pytest.raises(FormatError, match=r"bad_inv\.yaml.*learning_map_inv\[1\]"):
        LabelMap.from_yaml(bad)


def test_learning_map_round_trip():
    lm = LabelMap.default()
    t = np.arange(20)
    raw = lm.to_raw(t)
    assert raw.dtype == np.uint32
    assert raw.tolist() == [0, 10, 11, 15, 18, 20, 30, 31, 32, 40, 44, 48, 49, 50, 51, 70, 71, 72, 80, 81]
    np.testing.assert_array_equal(lm.to_train(raw), t)
    # Mapped raw classes collapse onto their training class.
    assert lm.to_train(np.array([[252, 13], [60, 99]])).tolist() == [[1, 5], [9, 0]]


def test_to_train_masks_instance_bits():
    lm = LabelMap.default()
    full = (np.array([5, 0, 65535], dtype=np.uint32) << 16) | np.array([10, 40, 81], dtype=np.uint32)
    out = lm.to_train(full)
    assert out.dtype == np.int64 and out.tolist() == [1, 9, 19]


def test_unknown_ids_rejected():
    lm = LabelMap.default()
    with pytest.raises(ValueError, match=r"2, 3, 300"):
        lm.to_train(np.array([10, 2, 3, 300, 3]))
    with pytest.raises(ValueError, match=r"\.\.\."):
        lm.to_train(np.arange(2, 9 + 12))  # 12 unknown ids, 10 listed
    with pytest.raises(ValueError, match="non-negative"):
        lm.to_train(np.array([-1]))
    with pytest.raises(ValueError, match="0..19"):
        lm.to_raw(np.array([0, 20]))
    with pytest.raises(ValueError, match="0..19"):
        lm.to_raw(np.array([-1]))
    with pytest.raises(TypeError, match="integer"):
        lm.to_train(np.array([10.0]))


def test_class_frequencies():
    f = LabelMap.default().class_frequencies()
    assert f.dtype == np.float64 and f.shape == (20,)
    assert (f >= 0).all()
    # The summing loses nothing; the published content itself adds up to 1 - 1.5e-6.
    assert f.sum() == pytest.approx(sum(LabelMap.default().raw_frequencies.values()), rel=1e-12)
    assert f.sum() == pytest.approx(1.0, abs=1e-5)
    # car = car + moving-car; road = road + lane-marking.
    assert f[1] == pytest.approx(0.040818519255974316 + 0.001789309418528068)
    assert f[9] == pytest.approx(0.1987493871255525 + 4.7084144280367186e-05)


def test_label_map_validation():
    lm = LabelMap.default()
    with pytest.raises(ValueError, match="learning_map_inv"):
        LabelMap(lm.names, lm.colors, lm.learning_map, {0: 0}, lm.raw_names, lm.raw_frequencies)
    with pytest.raises(ValueError, match="colors"):
        LabelMap(lm.names, lm.colors[:3], lm.learning_map, lm.learning_map_inv, lm.raw_names, {})


# --- scan and label files ---------------------------------------------------------------


def test_scan_round_trip(tmp_path):
    pts = RNG.normal(size=(37, 4)).astype(np.float32)
    path = tmp_path / "a" / "000007.bin"
    write_scan(path, pts)
    assert path.stat().st_size == 37 * 16
    back = read_scan(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, pts)
    assert [p.name for p in path.parent.iterdir()] == ["000007.bin"]  # no temporaries left


def test_scan_errors(tmp_path):
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\0" * 17)
    with pytest.raises(FormatError, match=r"odd\.bin.*17 bytes.*multiple of 16"):
        read_scan(odd)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match=r"empty\.bin.*empty"):
        read_scan(empty)
    nan = tmp_path / "nan.bin"
    nan.write_bytes(np.array([[0, 0, 0, 0], [1, np.nan, 0, 0]], dtype="<f4").tobytes())
    with pytest.raises(FormatError, match=r"nan\.bin.*non-finite.*point 1"):
        read_scan(nan)
    with pytest.raises(ValueError, match="points"):
        write_scan(tmp_path / "x.bin", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points"):
        write_scan(tmp_path / "x.bin", np.zeros((0, 4)))
    with pytest.raises(ValueError, match="finite"):
        write_scan(tmp_path / "x.bin", np.full((1, 4), np.inf))


def test_label_round_trip(tmp_path):
    sem = np.array([0, 10, 40, 65535, 259], dtype=np.int64)
    inst = np.array([0, 1, 0, 65535, 300], dtype=np.int32)
    path = tmp_path / "l" / "000000.label"
    write_label(path, sem, inst)
    raw = np.fromfile(path, dtype="<u4")
    assert raw[1] == (1 << 16) | 10 and raw[3] == 0xFFFFFFFF
    s, i = read_label(path, num_points=5)
    assert s.dtype == np.uint32 and i.dtype == np.uint32
    np.testing.assert_array_equal(s, sem)
    np.testing.assert_array_equal(i, inst)
    write_label(path, sem)  # no instance: high bits 0
    s, i = read_label(path)
    np.testing.assert_array_equal(s, sem)
    assert not i.any()


def test_label_errors(tmp_path):
    short = tmp_path / "short.label"
    short.write_bytes(b"\0" * 10)
    with pytest.raises(FormatError, match=r"short\.label.*10 bytes.*multiple of 4"):
        read_label(short)
    wrong = tmp_path / "wrong.label"
    write_label(wrong, np.zeros(3, dtype=np.int64))
    with pytest.raises(FormatError, match=r"wrong\.label.*3 labels for a scan of 4 points"):
        read_label(wrong, num_points=4)
    with pytest.raises(ValueError, match="semantic"):
        write_label(tmp_path / "x.label", np.array([0x10000]))
    with pytest.raises(ValueError, match="instance"):
        write_label(tmp_path / "x.label", np.array([1]), np.array([1, 2]))
    with pytest.raises(TypeError, match="semantic"):
        write_label(tmp_path / "x.label", np.array([1.0]))


@needs_data
def test_real_scans_and_labels():
    lm = LabelMap.default()
    for frame in FRAMES:
        scan_path = SEQ / "velodyne" / f"{frame}.bin"
        pts = read_scan(scan_path)
        assert pts.shape[1] == 4 and pts.shape[0] * 16 == scan_path.stat().st_size
        assert pts.shape[0] > 100_000
        sem, inst = read_label(SEQ / "labels" / f"{frame}.label", num_points=len(pts))
        assert len(sem) == len(pts)
        assert set(np.unique(sem).tolist()) <= set(lm.learning_map)
        assert inst.any()  # moving and thing classes carry instance ids
        train = lm.to_train(sem)
        assert train.min() >= 0 and train.max() < 20
        # Canonical raw ids (the images of the inverse map) survive the round trip.
        canonical = np.isin(sem, list(lm.learning_map_inv.values()))
        assert canonical.mean() > 0.5
        np.testing.assert_array_equal(lm.to_raw(train)[canonical], sem[canonical])
        assert (lm.to_raw(train)[~canonical] != sem[~canonical]).all()


# --- folder layout ----------------------------------------------------------------------


def _check_real_records(records):
    assert [(r.sequence, r.frame) for r in records] == [("00", f) for f in FRAMES]
    for r in records:
        assert r.scan_path == SEQ / "velodyne" / f"{r.frame}.bin"
        assert r.label_path == SEQ / "labels" / f"{r.frame}.label"


@needs_data
@pytest.mark.parametrize("where", [ROOT, ROOT / "sequences", SEQ, SEQ / "velodyne"])
def test_find_scans_real(where):
    _check_real_records(find_scans(where, require_labels=True))
    _check_real_records(find_scans(str(where), sequences=[0]))
    _check_real_records(find_scans(where, sequences=["00"]))
    _check_real_records(find_scans(where, sequences=["0", 5]))
    with pytest.raises(FileNotFoundError, match=r"sequences \['08'\]"):
        find_scans(where, sequences=[8])


@needs_data
def test_find_scans_single_file():
    (rec,) = find_scans(SEQ / "velodyne" / "000001.bin")
    assert rec == ScanRecord("00", "000001", SEQ / "velodyne" / "000001.bin", SEQ / "labels" / "000001.label")


def test_find_scans_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        find_scans(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no .bin scans"):
        find_scans(tmp_path)
    write_scan(tmp_path / "sequences" / "03" / "velodyne" / "000000.bin", np.ones((1, 4)))
    with pytest.raises(FileNotFoundError, match=r"000000\.bin.*000000\.label"):
        find_scans(tmp_path, require_labels=True)
    with pytest.raises(TypeError, match="sequences"):
        find_scans(tmp_path, sequences=3)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="path"):
        find_scans(tmp_path / "x.txt")


def test_find_scans_layouts(tmp_path):
    one = np.ones((1, 4))
    root = tmp_path / "ds"
    for seq, frame in [("8", "10"), ("8", "2"), ("01", "000000")]:
        write_scan(root / "sequences" / seq / "velodyne" / f"{frame}.bin", one)
    write_label(root / "sequences" / "8" / "labels" / "2.label", np.array([10]))
    (root / "sequences" / "8" / "velodyne" / ".2.bin.tmp.bin").write_bytes(b"")  # stray temporary
    recs = find_scans(root)
    # Numeric names are padded and sorted by value.
    assert [(r.sequence, r.frame) for r in recs] == [("01", "000000"), ("08", "2"), ("08", "10")]
    assert recs[1].label_path == root / "sequences" / "8" / "labels" / "2.label"
    assert recs[2].label_path is None
    assert [r.frame for r in find_scans(root, sequences=["08"])] == ["2", "10"]

    plain = tmp_path / "my_scans"
    write_scan(plain / "a.bin", one)
    write_label(plain / "a.label", np.array([40]))
    (rec,) = find_scans(plain)
    assert rec == ScanRecord("my_scans", "a", plain / "a.bin", plain / "a.label")
    assert find_scans(plain / "a.bin") == [rec]


def test_prediction_path(tmp_path):
    rec = ScanRecord("08", "000123", tmp_path / "x.bin", None)
    assert prediction_path(tmp_path / "out", rec) == tmp_path / "out/sequences/08/predictions/000123.label"
    with pytest.raises(TypeError, match="record"):
        prediction_path(tmp_path, "08/000123")
