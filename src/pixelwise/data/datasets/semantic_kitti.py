"""SemanticKITTI: the label map, the folder layout, and scans paired with their labels.

Layout::

    root/sequences/<seq>/velodyne/<frame>.bin      float32 x, y, z, remission per point
    root/sequences/<seq>/labels/<frame>.label      uint32 per point: instance << 16 | semantic
    out/sequences/<seq>/predictions/<frame>.label  submission files (same packing)

Raw semantic ids (0, 1, 10, 11, ..., 259) are mapped to 20 training ids by the learning map
(0 = "unlabeled", ignored in training and evaluation); predictions are mapped back to raw ids
with the inverse map before they are written for submission.

The file formats (``.bin`` scans, ``.label`` files) are read and written by
:mod:`pixelwise.data.io.semantic_kitti`; :func:`read_scan_record` reads a scan found by
:func:`find_scans` and checks that a label file beside it has one label per point. Folder scans
refuse symbolic links that lead outside the folder scanned unless ``follow_symlinks=True``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from ..io.files import FormatError, PathLike, as_path, check_within_root, read_regular_file
from ..io.semantic_kitti import MAX_ID, check_integer_array, label_count, read_scan

__all__ = [
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "SPLITS",
    "LabelMap",
    "ScanRecord",
    "find_scans",
    "prediction_path",
    "read_scan_record",
]

# Training classes: (name, raw id it maps back to, RGB colour of that raw id).
_TRAIN_CLASSES = (
    ("unlabeled", 0, (0, 0, 0)),
    ("car", 10, (100, 150, 245)),
    ("bicycle", 11, (100, 230, 245)),
    ("motorcycle", 15, (30, 60, 150)),
    ("truck", 18, (80, 30, 180)),
    ("other-vehicle", 20, (0, 0, 255)),
    ("person", 30, (255, 30, 30)),
    ("bicyclist", 31, (255, 40, 200)),
    ("motorcyclist", 32, (150, 30, 90)),
    ("road", 40, (255, 0, 255)),
    ("parking", 44, (255, 150, 255)),
    ("sidewalk", 48, (75, 0, 75)),
    ("other-ground", 49, (175, 0, 75)),
    ("building", 50, (255, 200, 0)),
    ("fence", 51, (255, 120, 50)),
    ("vegetation", 70, (0, 175, 0)),
    ("trunk", 71, (135, 60, 0)),
    ("terrain", 72, (150, 240, 80)),
    ("pole", 80, (255, 240, 150)),
    ("traffic-sign", 81, (255, 0, 0)),
)

# Raw classes: (raw id, name, training id, fraction of all points in the dataset).
_RAW_CLASSES = (
    (0, "unlabeled", 0, 0.018889854628292943),
    (1, "outlier", 0, 0.0002937197336781505),
    (10, "car", 1, 0.040818519255974316),
    (11, "bicycle", 2, 0.00016609538710764618),
    (13, "bus", 5, 2.7879693665067774e-05),
    (15, "motorcycle", 3, 0.00039838616015114444),
    (16, "on-rails", 5, 0.0),
    (18, "truck", 4, 0.0020633612104619787),
    (20, "other-vehicle", 5, 0.0016218197275284021),
    (30, "person", 6, 0.00017698551338515307),
    (31, "bicyclist", 7, 1.1065903904919655e-08),
    (32, "motorcyclist", 8, 5.532951952459828e-09),
    (40, "road", 9, 0.1987493871255525),
    (44, "parking", 10, 0.014717169549888214),
    (48, "sidewalk", 11, 0.14392298360372),
    (49, "other-ground", 12, 0.0039048553037472045),
    (50, "building", 13, 0.1326861944777486),
    (51, "fence", 14, 0.0723592229456223),
    (52, "other-structure", 0, 0.002395131480328884),
    (60, "lane-marking", 9, 4.7084144280367186e-05),
    (70, "vegetation", 15, 0.26681502148037506),
    (71, "trunk", 16, 0.006035012012626033),
    (72, "terrain", 17, 0.07814222006271769),
    (80, "pole", 18, 0.002855498193863172),
    (81, "traffic-sign", 19, 0.0006155958086189918),
    (99, "other-object", 0, 0.009923127583046915),
    (252, "moving-car", 1, 0.001789309418528068),
    (253, "moving-bicyclist", 7, 0.00012709999297008662),
    (254, "moving-person", 6, 0.00016059776092534436),
    (255, "moving-motorcyclist", 8, 3.745553104802113e-05),
    (256, "moving-on-rails", 5, 0.0),
    (257, "moving-bus", 5, 0.00011351574470342043),
    (258, "moving-truck", 4, 0.00010157861367183268),
    (259, "moving-other-vehicle", 5, 4.3840131989471124e-05),
)

CLASS_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _TRAIN_CLASSES)
NUM_CLASSES = 20
IGNORE_INDEX = 0

SPLITS: dict[str, tuple[int, ...]] = {
    "train": (0, 1, 2, 3, 4, 5, 6, 7, 9, 10),
    "valid": (8,),
    "test": (11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21),
}

_MAX_YAML_BYTES = 16 << 20  # the official semantic-kitti.yaml is 6 kB
_YAML_KEYS = ("labels", "color_map", "content", "learning_map", "learning_map_inv")


def _int_key_dict(value, what: str, value_type) -> dict:
    """Check a mapping of non-negative int keys and convert its values with ``value_type``."""
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    out = {}
    for key, item in value.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"{what}: keys must be non-negative ints, got {key!r}")
        try:
            out[int(key)] = value_type(item)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}[{key}]: expected {value_type.__name__}, got {item!r}") from exc
    return out


@dataclass(frozen=True)
class LabelMap:
    """The mapping between raw SemanticKITTI label ids and training ids, with names and colours.

    Fields:
        names: training class names, index = training id (0 is "unlabeled").
        colors: ``uint8 (num_classes, 3)`` RGB colour per training class (the colour of its raw
            id ``learning_map_inv[i]``; the yaml stores BGR). Read-only.
        learning_map: raw id -> training id.
        learning_map_inv: training id -> raw id (used to write submission labels).
        raw_names: raw id -> name.
        raw_frequencies: raw id -> fraction of all points (the yaml ``content``).

    The maps are checked on construction: ``learning_map_inv`` must cover ``0..num_classes-1``
    and ``learning_map[learning_map_inv[i]] == i``, so ``to_train(to_raw(t)) == t``.

    Example:
        >>> lm = LabelMap.default()
        >>> lm.to_train(np.array([10, 252, 52])).tolist()
        [1, 1, 0]
        >>> lm.to_raw(np.array([1, 19])).tolist()
        [10, 81]
    """

    names: tuple[str, ...]
    colors: np.ndarray
    learning_map: dict[int, int]
    learning_map_inv: dict[int, int]
    raw_names: dict[int, str]
    raw_frequencies: dict[int, float]

    def __post_init__(self) -> None:
        if isinstance(self.names, str) or not all(isinstance(n, str) for n in self.names):
            raise TypeError(f"names must be a sequence of str, got {self.names!r}")
        names = tuple(self.names)
        if not names:
            raise ValueError("names must not be empty")
        k = len(names)
        colors = np.array(self.colors)
        if colors.shape != (k, 3):
            raise ValueError(f"colors must have shape ({k}, 3), got {colors.shape}")
        if not np.issubdtype(colors.dtype, np.integer) or colors.min() < 0 or colors.max() > 255:
            raise ValueError("colors must be integers in 0..255")
        colors = colors.astype(np.uint8)
        colors.setflags(write=False)
        learning_map = _int_key_dict(self.learning_map, "learning_map", int)
        inv = _int_key_dict(self.learning_map_inv, "learning_map_inv", int)
        raw_names = _int_key_dict(self.raw_names, "raw_names", str)
        freqs = _int_key_dict(self.raw_frequencies, "raw_frequencies", float)
        if not learning_map:
            raise ValueError("learning_map must not be empty")
        if max(learning_map) > MAX_ID:
            raise ValueError(f"learning_map: raw ids must be <= {MAX_ID}, got {max(learning_map)}")
        bad = sorted(r for r, t in learning_map.items() if not 0 <= t < k)
        if bad:
            raise ValueError(f"learning_map: raw ids {bad[:10]} map outside 0..{k - 1}")
        if sorted(inv) != list(range(k)):
            raise ValueError(f"learning_map_inv must have keys 0..{k - 1}, got {sorted(inv)}")
        for t, r in inv.items():
            if learning_map.get(r) != t:
                raise ValueError(
                    f"learning_map_inv[{t}] = {r} but learning_map[{r}] = {learning_map.get(r)}; "
                    "the inverse must map back to the same training id"
                )
        bad = sorted(r for r in freqs if r not in learning_map)
        if bad:
            raise ValueError(f"raw_frequencies: raw ids {bad[:10]} are not in learning_map")
        if any(not np.isfinite(f) or f < 0 for f in freqs.values()):
            raise ValueError("raw_frequencies must be finite and non-negative")
        lut = np.full(max(learning_map) + 1, -1, dtype=np.int64)
        lut[list(learning_map)] = list(learning_map.values())
        for name, value in (
            ("names", names),
            ("colors", colors),
            ("learning_map", learning_map),
            ("learning_map_inv", inv),
            ("raw_names", raw_names),
            ("raw_frequencies", freqs),
        ):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_lut", lut)
        object.__setattr__(self, "_inv_lut", np.array([inv[t] for t in range(k)], dtype=np.uint32))

    # The generated __eq__ would compare the colour arrays with ==, which is ambiguous.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelMap):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            if f.name == "colors"
            else getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
        )

    def __hash__(self) -> int:
        return hash((self.names, tuple(sorted(self.learning_map.items()))))

    @property
    def num_classes(self) -> int:
        """Number of training classes (20 for the standard map), including "unlabeled"."""
        return len(self.names)

    @classmethod
    @functools.cache
    def default(cls) -> LabelMap:
        """The standard SemanticKITTI label map (the facts of the official semantic-kitti.yaml).

        Returns:
            The shared, cached :class:`LabelMap` with 20 training classes.

        Example:
            >>> LabelMap.default().names[1], LabelMap.default().colors[1].tolist()
            ('car', [100, 150, 245])
        """
        return cls(
            names=CLASS_NAMES,
            colors=np.array([rgb for _, _, rgb in _TRAIN_CLASSES], dtype=np.uint8),
            learning_map={raw: train for raw, _, train, _ in _RAW_CLASSES},
            learning_map_inv={t: raw for t, (_, raw, _) in enumerate(_TRAIN_CLASSES)},
            raw_names={raw: name for raw, name, _, _ in _RAW_CLASSES},
            raw_frequencies={raw: freq for raw, _, _, freq in _RAW_CLASSES},
        )

    @classmethod
    def from_yaml(cls, path: PathLike) -> LabelMap:
        """Read a label map from a SemanticKITTI-style yaml file.

        Uses the keys ``labels``, ``color_map`` (BGR), ``content``, ``learning_map`` and
        ``learning_map_inv``; the training class names are the raw names of
        ``learning_map_inv``.

        Args:
            path: the yaml file (e.g. ``semantic-kitti.yaml``).

        Returns:
            The :class:`LabelMap`.

        Raises:
            FormatError: the path is not a regular file (or over 16 MiB), the file is not valid
                yaml, lacks a key, or the maps are inconsistent; the message names the file.
        """
        path = as_path(path)
        text = read_regular_file(path, "yaml", _MAX_YAML_BYTES)
        try:
            doc = yaml.safe_load(text.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise FormatError(f"{path}: not UTF-8 text ({exc})") from exc
        except yaml.YAMLError as exc:
            raise FormatError(f"{path}: not valid yaml ({exc})") from exc
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_dict(cls, doc: dict, *, source: str = "label map") -> LabelMap:
        """Build a label map from a SemanticKITTI-style mapping (a parsed label yaml).

        Args:
            doc: a mapping with the keys ``labels``, ``color_map`` (BGR), ``content``,
                ``learning_map`` and ``learning_map_inv`` (other keys, e.g. ``learning_ignore``
                and ``split``, are ignored); the training class names are the raw names of
                ``learning_map_inv``.
            source: what the message of an error names (a file, ``data_cfg.yaml``...).

        Returns:
            The :class:`LabelMap`.

        Raises:
            FormatError: ``doc`` is not a mapping, lacks a key, or the maps are inconsistent.

        Example:
            >>> LabelMap.from_dict(LabelMap.default().to_dict()) == LabelMap.default()
            True
        """
        if not isinstance(doc, dict):
            raise FormatError(f"{source}: expected a yaml mapping at the top level, got {type(doc).__name__}")
        for key in _YAML_KEYS:
            if key not in doc:
                raise FormatError(f"{source}: missing key {key!r} (needs {', '.join(_YAML_KEYS)})")
        try:
            raw_names = _int_key_dict(doc["labels"], "labels", str)
            bgr = _int_key_dict(doc["color_map"], "color_map", list)
            inv = _int_key_dict(doc["learning_map_inv"], "learning_map_inv", int)
            names, colors = [], []
            for t in sorted(inv):
                raw = inv[t]
                if raw not in raw_names:
                    raise ValueError(f"learning_map_inv[{t}] = {raw} has no entry in 'labels'")
                if raw not in bgr or len(bgr[raw]) != 3:
                    raise ValueError(f"learning_map_inv[{t}] = {raw} has no [b, g, r] entry in 'color_map'")
                names.append(raw_names[raw])
                colors.append(bgr[raw][::-1])
            return cls(
                names=tuple(names),
                colors=np.array(colors),
                learning_map=doc["learning_map"],
                learning_map_inv=inv,
                raw_names=raw_names,
                raw_frequencies=doc["content"],
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict:
        """The SemanticKITTI label-yaml mapping of this map (``labels``, ``color_map`` in BGR,
        ``content``, ``learning_map``, ``learning_map_inv``, ``learning_ignore``), plain ints,
        floats and lists so ``yaml.safe_dump`` writes it.

        A raw id that is not the target of ``learning_map_inv`` gets the colour of the training
        class it maps to (this map keeps one colour per training class). ``learning_ignore``
        marks training id 0 ("unlabeled") only.
        """
        return {
            "labels": {raw: self.raw_names.get(raw, self.names[t]) for raw, t in sorted(self.learning_map.items())},
            "color_map": {raw: [int(c) for c in self.colors[t][::-1]] for raw, t in sorted(self.learning_map.items())},
            "content": {raw: float(self.raw_frequencies.get(raw, 0.0)) for raw in sorted(self.learning_map)},
            "learning_map": dict(sorted(self.learning_map.items())),
            "learning_map_inv": dict(sorted(self.learning_map_inv.items())),
            "learning_ignore": {t: t == IGNORE_INDEX for t in range(self.num_classes)},
        }

    def to_train(self, raw_semantic: np.ndarray) -> np.ndarray:
        """Map raw semantic ids to training ids.

        Args:
            raw_semantic: integer array of raw ids, any shape; full uint32 labels are accepted
                (only the low 16 bits, the semantic id, are used).

        Returns:
            ``int64`` array of training ids, same shape.

        Raises:
            ValueError: an id is negative or not in the learning map (lists up to 10 of them).

        Example:
            >>> LabelMap.default().to_train(np.array([(7 << 16) | 10], dtype=np.uint32)).tolist()
            [1]
        """
        arr = check_integer_array(raw_semantic, "raw_semantic")
        if arr.size and arr.min() < 0:
            raise ValueError(f"raw_semantic: ids must be non-negative, got min {arr.min()}")
        raw = arr.astype(np.int64) & MAX_ID
        train = np.full(raw.shape, -1, dtype=np.int64)
        in_range = raw < len(self._lut)
        train[in_range] = self._lut[raw[in_range]]
        unknown = np.unique(raw[train < 0])
        if unknown.size:
            raise ValueError(
                f"raw_semantic: {unknown.size} raw id(s) not in the learning map: "
                f"{unknown[:10].tolist()}{' ...' if unknown.size > 10 else ''}"
            )
        return train

    def to_raw(self, train: np.ndarray) -> np.ndarray:
        """Map training ids back to raw ids (for submission label files).

        Args:
            train: integer array of training ids in ``0..num_classes-1``, any shape.

        Returns:
            ``uint32`` array of raw ids, same shape.

        Raises:
            ValueError: an id is outside ``0..num_classes-1``.

        Example:
            >>> LabelMap.default().to_raw(np.array([[0, 9]])).tolist()
            [[0, 40]]
        """
        arr = check_integer_array(train, "train")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_classes):
            raise ValueError(f"train: ids must be in 0..{self.num_classes - 1}, got range {arr.min()}..{arr.max()}")
        return self._inv_lut[arr.astype(np.int64)]

    def class_frequencies(self) -> np.ndarray:
        """Fraction of points per training class: raw frequencies summed through the map.

        Returns:
            ``float64 (num_classes,)``, non-negative (sums to ~1 for the standard map).
        """
        freq = np.zeros(self.num_classes, dtype=np.float64)
        for raw, f in self.raw_frequencies.items():
            freq[self.learning_map[raw]] += f
        return freq


@dataclass(frozen=True)
class ScanRecord:
    """One scan found on disk.

    Fields:
        sequence: sequence name, e.g. ``"00"`` (numeric names are zero-padded to 2 digits).
        frame: frame name, the file stem, e.g. ``"000123"``.
        scan_path: the ``.bin`` file.
        label_path: the matching ``.label`` file, or None if it does not exist.
    """

    sequence: str
    frame: str
    scan_path: Path
    label_path: Path | None


def _sequence_name(name: str) -> str:
    return f"{int(name):02d}" if name.isdigit() else name


def _natural_key(name: str) -> tuple:
    # Numeric names sort by value so unpadded frames ("2" before "10") stay in order.
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _normalize_sequences(sequences) -> set[str] | None:
    if sequences is None:
        return None
    if isinstance(sequences, (str, int)):
        raise TypeError(f"sequences must be a list of ints or strings, got {sequences!r}")
    out = set()
    for s in sequences:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer, str)):
            raise TypeError(f"sequences: entries must be ints or strings, got {s!r}")
        if isinstance(s, str):
            out.add(_sequence_name(s))
        elif s < 0:
            raise ValueError(f"sequences: sequence numbers must be non-negative, got {s}")
        else:
            out.add(f"{int(s):02d}")
    return out


def _scans_in(folder: Path) -> list[Path]:
    # Dotfiles are skipped: atomic writers leave hidden temporaries such as ".x.bin.tmp.bin".
    return [p for p in folder.iterdir() if p.suffix == ".bin" and not p.name.startswith(".") and p.is_file()]


def _label_dir(scan_dir: Path) -> Path:
    return scan_dir.parent / "labels" if scan_dir.name == "velodyne" else scan_dir


def _sequence_of(scan_dir: Path) -> str:
    return _sequence_name(scan_dir.parent.name if scan_dir.name == "velodyne" else scan_dir.name)


def find_scans(
    path: PathLike,
    sequences: Iterable[int | str] | None = None,
    require_labels: bool = False,
    *,
    follow_symlinks: bool = False,
) -> list[ScanRecord]:
    """List the scans under ``path``, with their label files.

    ``path`` may be:

    * a dataset root containing ``sequences/``;
    * the ``sequences/`` folder (any folder whose sub-folders contain ``velodyne/``);
    * one sequence folder (containing ``velodyne/``): the sequence is the folder's name;
    * a ``velodyne/`` folder: the sequence is its parent's name;
    * any other folder of ``.bin`` files: the sequence is that folder's name;
    * a single ``.bin`` file: as for the folder it lies in.

    Labels of ``<seq>/velodyne/<frame>.bin`` are ``<seq>/labels/<frame>.label``; for a plain
    folder (not named ``velodyne``) they are ``<frame>.label`` files next to the ``.bin`` files.
    Numeric sequence names are zero-padded to two digits (``"8"`` -> ``"08"``), so that
    :func:`prediction_path` writes the submission layout; other names are kept as they are.

    Args:
        path: where to look (see above).
        sequences: keep only these sequences (ints or strings; ``8``, ``"8"`` and ``"08"`` are
            the same sequence); None keeps all.
        require_labels: raise if a scan has no label file.
        follow_symlinks: accept folders, scans and labels that are symbolic links leading
            outside the data root (``path``; for a ``velodyne/`` folder or a file in one, the
            sequence folder holding it, so that ``labels/`` is inside). By default such a link
            is an error; links that stay inside the root are always followed.

    Returns:
        :class:`ScanRecord` list sorted by (sequence, frame), numeric names by value.

    Raises:
        FileNotFoundError: ``path`` does not exist, holds no (selected) scans, or a label is
            missing while ``require_labels`` is set.
        OutsideRootError: a folder, scan or label found is a symbolic link leading outside the
            data root and ``follow_symlinks`` is False; the message names the link and its target.

    Example:
        >>> import tempfile
        >>> from pixelwise.data.io.semantic_kitti import write_scan
        >>> root = Path(tempfile.mkdtemp())
        >>> write_scan(root / "sequences/08/velodyne/000000.bin", np.ones((1, 4)))
        >>> [(r.sequence, r.frame, r.label_path) for r in find_scans(root)]
        [('08', '000000', None)]
    """
    path = as_path(path)
    wanted = _normalize_sequences(sequences)
    if not path.exists():
        raise FileNotFoundError(f"find_scans: {path} does not exist")

    def check_found(found: Path) -> None:  # what the caller named is used as it is
        if found != path:
            check_within_root(found, root, follow_symlinks=follow_symlinks)

    if path.is_file():
        if path.suffix != ".bin":
            raise ValueError(f"path: expected a folder or a .bin scan file, got {path}")
        scan_dirs = [path.parent]
        root = path.parent.parent if path.parent.name == "velodyne" else path.parent
    else:
        root = path.parent if path.name == "velodyne" else path
        seq_root = path / "sequences" if (path / "sequences").is_dir() else path
        check_found(seq_root)
        if (seq_root / "velodyne").is_dir():
            scan_dirs = [seq_root / "velodyne"]
        else:
            seq_dirs = [d / "velodyne" for d in seq_root.iterdir() if (d / "velodyne").is_dir()]
            scan_dirs = seq_dirs or [seq_root]
    records = []
    for scan_dir in scan_dirs:
        seq = _sequence_of(scan_dir)
        if wanted is not None and seq not in wanted:
            continue
        label_dir = _label_dir(scan_dir)
        found_dirs = [scan_dir.parent, scan_dir, label_dir] if scan_dir.name == "velodyne" else [scan_dir]
        if path.is_file():  # the caller named the scan, hence its folder(s): only labels are found
            found_dirs = found_dirs[2:]
        for folder in found_dirs:
            check_found(folder)
        for scan in [path] if path.is_file() else _scans_in(scan_dir):
            label = label_dir / f"{scan.stem}.label"
            check_found(scan)
            check_found(label)
            if not label.is_file():
                if require_labels:
                    raise FileNotFoundError(f"find_scans: scan {scan} has no label file {label}")
                label = None
            records.append(ScanRecord(seq, scan.stem, scan, label))
    if not records:
        selected = "" if wanted is None else f" in sequences {sorted(wanted)}"
        raise FileNotFoundError(f"find_scans: no .bin scans found{selected} under {path}")
    records.sort(key=lambda r: (_natural_key(r.sequence), _natural_key(r.frame)))
    return records


def read_scan_record(record: ScanRecord) -> np.ndarray:
    """The points of a scan found by :func:`find_scans`, checked against its label file.

    When the record has a ``.label`` file, its count (its size / 4; the labels themselves are not
    read) must be the scan's point count: predicting or evaluating a scan beside the labels of
    another one is an error, not a silent mismatch.

    Args:
        record: the scan.

    Returns:
        ``float32 (N, 4)``: x, y, z, remission (see :func:`pixelwise.data.io.semantic_kitti.read_scan`).

    Raises:
        FormatError: the scan or label file is unreadable (not a regular file, a size the format
            does not allow...), or the counts differ; the message names both files and both counts.
        FileNotFoundError: a file does not exist.
    """
    if not isinstance(record, ScanRecord):
        raise TypeError(f"record must be a ScanRecord, got {type(record).__name__}")
    points = read_scan(record.scan_path)
    if record.label_path is not None:
        count = label_count(record.label_path)
        if count != len(points):
            raise FormatError(
                f"{record.scan_path} has {len(points)} points but its label file {record.label_path} "
                f"has {count} labels"
            )
    return points


def prediction_path(out_root: PathLike, record: ScanRecord) -> Path:
    """Where the submission label file of a scan goes.

    Args:
        out_root: the submission root.
        record: the scan.

    Returns:
        ``out_root/sequences/<seq>/predictions/<frame>.label``.

    Example:
        >>> prediction_path("out", ScanRecord("08", "000001", Path("x.bin"), None)).as_posix()
        'out/sequences/08/predictions/000001.label'
    """
    out_root = as_path(out_root, "out_root")
    if not isinstance(record, ScanRecord):
        raise TypeError(f"record must be a ScanRecord, got {type(record).__name__}")
    return out_root / "sequences" / record.sequence / "predictions" / f"{record.frame}.label"
