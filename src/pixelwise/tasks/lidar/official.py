"""Checkpoints of the official SqueezeSegV3 code, both ways.

The official code (``chenfengxu714/SqueezeSegV3``) keeps a trained model as a *log folder*: seven
``torch.save``'d state dicts with fixed names -- ``backbone``, ``segmentation_decoder``,
``segmentation_head1`` .. ``segmentation_head5`` -- beside ``arch_cfg.yaml`` (network, sensor,
normalisation, kNN) and ``data_cfg.yaml`` (the SemanticKITTI label maps). This module

* translates state-dict keys between that layout and :class:`~pixelwise.models.squeezeseg.
  SqueezeSegV3` with one table, :data:`KEY_TABLE`, used in both directions
  (:func:`official_to_ours`, :func:`ours_to_official`);
* reads a log folder (:func:`read_official_folder`) -- the weights with ``torch.load(...,
  weights_only=True)`` only, so a file holding pickled code is refused, never run -- and turns it
  into one of our run folders (:func:`import_official`: ``model.safetensors`` + sidecar, which
  ``pixelwise lidar eval|predict --model <out>`` load) or straight into a
  :class:`~pixelwise.tasks.base.LoadedRun` (:func:`load_official`, behind ``--model
  official:<folder>``);
* writes our ``ssgv3_21`` / ``ssgv3_53`` as such a folder (:func:`write_official_folder`), so a model
  trained here runs in the official code.

Every problem is an :class:`OfficialCheckpointError` (a ``ValueError``) that names the file.

Width. The official network has no channel multiplier. Our narrow models (``width < 1``, for CPU
tests) are written with one extra key the official code never reads, ``backbone.extra.
pixelwise_width`` in ``arch_cfg.yaml``; the reader takes the width from there (1 when absent).

Label map. Our run config cannot carry a label map (evaluation and prediction use
:meth:`LabelMap.default`), so a ``data_cfg.yaml`` whose maps differ from the standard
SemanticKITTI ones is refused rather than silently mis-read.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from ...atomic import write_bytes_atomic, write_text_atomic
from ...data.datasets.semantic_kitti import IGNORE_INDEX, NUM_CLASSES, SPLITS, LabelMap
from ...data.io.files import FormatError
from ...engine import config_to_dict, save_checkpoint
from ...engine.checkpoint import unwrap_model
from ...engine.config import save_config
from ...models import create_model
from ...models.squeezeseg import SqueezeSegV3
from ..base import LoadedRun
from .config import KnnConfig, LidarConfig

__all__ = ["ARCH_FILE", "COMPILED_KEY_TABLE", "DATA_FILE", "KEY_TABLE", "official_key_to_ours", "our_key_to_official", "OFFICIAL_FILES", "OFFICIAL_PREFIX", "WIDTH_KEY", "KeyRule",
           "OfficialCheckpoint", "OfficialCheckpointError", "import_official", "load_official",
           "official_to_ours", "ours_to_official", "read_official_folder", "write_official_folder"]

OFFICIAL_FILES = ("backbone", "segmentation_decoder", *(f"segmentation_head{n}" for n in range(1, 6)))
ARCH_FILE = "arch_cfg.yaml"
DATA_FILE = "data_cfg.yaml"
OFFICIAL_PREFIX = "official:"  # --model official:<folder>
WIDTH_KEY = "pixelwise_width"  # backbone.extra.<this> in arch_cfg.yaml: our channel multiplier (not official)
DEPTHS = (21, 53)
OUTPUT_STRIDE = 8
_MAX_YAML_BYTES = 1 << 20
_SHOWN = 5  # keys listed in an error


class OfficialCheckpointError(ValueError):
    """An official SqueezeSegV3 log folder (or a model to write as one) that cannot be used; the
    message names the file and what is wrong."""


# --------------------------------------------------------------------------- the key table


@dataclass(frozen=True)
class KeyRule:
    """One row of :data:`KEY_TABLE`: official file + key pattern <-> our key pattern.

    Placeholders (in braces) match the same thing on both sides, numbered each side's way:

    ``{enc}``    encoder stage: official ``enc1`` .. ``enc5``       <-> ours ``stages.0`` .. ``stages.4``
    ``{dec}``    decoder block: official ``dec5`` .. ``dec1``       <-> ours ``decoder.0`` .. ``decoder.4``
    ``{head}``   head: official file ``segmentation_head1`` .. ``5`` <-> ours ``heads.4`` .. ``heads.0``
    ``{block}``  SAC block within a stage (same number both sides)
    ``{p}``      ``weight`` or ``bias`` of a convolution
    ``{bn}``     ``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``

    ``only`` restricts a placeholder to some official values (``dec5``/``dec4`` open with a
    ``conv``, ``dec3``..``dec1`` with an ``upconv``; ours call both ``up.0``).
    """

    file: str
    official: str
    ours: str
    only: tuple[tuple[str, tuple[int, ...]], ...] = ()


# ours = sign * official + offset, for the placeholders numbered differently on the two sides
_RENUMBER = {"enc": (1, -1), "dec": (-1, 5), "head": (-1, 5)}
_PARAM = "weight|bias"
_BN = "weight|bias|running_mean|running_var|num_batches_tracked"
_OFFICIAL_VALUES = {"enc": "[1-5]", "dec": "[1-5]", "head": "[1-5]", "block": r"\d+", "p": _PARAM, "bn": _BN}
_OUR_VALUES = {"enc": "[0-4]", "dec": "[0-4]", "head": "[0-4]", "block": r"\d+", "p": _PARAM, "bn": _BN}

_SAC = "enc{enc}.residual_{block}"
_OUR_SAC = "stages.{enc}.blocks.{block}"

#: The whole correspondence (official file, official key) <-> our ``state_dict`` key.
KEY_TABLE: tuple[KeyRule, ...] = (
    # backbone: stem
    KeyRule("backbone", "conv1.{p}", "stem.0.{p}"),
    KeyRule("backbone", "bn1.{bn}", "stem.1.{bn}"),
    # backbone: SAC blocks (attention_x = 7x7 conv + BN; position_mlp_2 = 1x1 conv, BN, ReLU, 3x3 conv, BN, ReLU)
    KeyRule("backbone", _SAC + ".attention_x.0.{p}", _OUR_SAC + ".attention.0.{p}"),
    KeyRule("backbone", _SAC + ".attention_x.1.{bn}", _OUR_SAC + ".attention.1.{bn}"),
    KeyRule("backbone", _SAC + ".position_mlp_2.0.{p}", _OUR_SAC + ".taps.{p}"),
    KeyRule("backbone", _SAC + ".position_mlp_2.1.{bn}", _OUR_SAC + ".post.0.{bn}"),
    KeyRule("backbone", _SAC + ".position_mlp_2.3.{p}", _OUR_SAC + ".post.2.{p}"),
    KeyRule("backbone", _SAC + ".position_mlp_2.4.{bn}", _OUR_SAC + ".post.3.{bn}"),
    # backbone: the downsampling conv closing stages 1-3
    KeyRule("backbone", "enc{enc}.conv.{p}", "stages.{enc}.down.0.{p}"),
    KeyRule("backbone", "enc{enc}.bn.{bn}", "stages.{enc}.down.1.{bn}"),
    # decoder
    KeyRule("segmentation_decoder", "dec{dec}.conv.{p}", "decoder.{dec}.up.0.{p}", (("dec", (5, 4)),)),
    KeyRule("segmentation_decoder", "dec{dec}.upconv.{p}", "decoder.{dec}.up.0.{p}", (("dec", (3, 2, 1)),)),
    KeyRule("segmentation_decoder", "dec{dec}.bn.{bn}", "decoder.{dec}.up.1.{bn}"),
    KeyRule("segmentation_decoder", "dec{dec}.residual.conv1.{p}", "decoder.{dec}.residual.0.0.{p}"),
    KeyRule("segmentation_decoder", "dec{dec}.residual.bn1.{bn}", "decoder.{dec}.residual.0.1.{bn}"),
    KeyRule("segmentation_decoder", "dec{dec}.residual.conv2.{p}", "decoder.{dec}.residual.1.0.{p}"),
    KeyRule("segmentation_decoder", "dec{dec}.residual.bn2.{bn}", "decoder.{dec}.residual.1.1.{bn}"),
    # heads: Sequential(Dropout2d, Conv2d)
    KeyRule("segmentation_head{head}", "1.{p}", "heads.{head}.1.{p}"),
)


def _compile(pattern: str, values: dict[str, str]) -> re.Pattern:
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out += re.escape(pattern[pos:m.start()]) + f"(?P<{m.group(1)}>{values[m.group(1)]})"
        pos = m.end()
    return re.compile(out + re.escape(pattern[pos:]) + r"\Z")


# The key table with its patterns compiled: (row, official "file/key" regex, our key regex).
COMPILED_KEY_TABLE = [
    (rule, _compile(f"{rule.file}/{rule.official}", _OFFICIAL_VALUES), _compile(rule.ours, _OUR_VALUES))
    for rule in KEY_TABLE]


def _renumber(values: dict[str, str], to_ours: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in _RENUMBER:
            sign, offset = _RENUMBER[name]
            out[name] = sign * int(value) + offset if to_ours else (int(value) - offset) * sign
        elif name == "block":
            out[name] = int(value)
        else:
            out[name] = value
    return out


def _allowed(rule: KeyRule, official_values: dict[str, Any]) -> bool:
    return all(int(official_values[name]) in allowed for name, allowed in rule.only)


def official_key_to_ours(file: str, key: str) -> str | None:
    """Our key for ``key`` of official file ``file``, or None when the table has no row for it."""
    for rule, official, ours in COMPILED_KEY_TABLE:
        m = official.match(f"{file}/{key}")
        if m and _allowed(rule, m.groupdict()):
            return rule.ours.format(**_renumber(m.groupdict(), to_ours=True))
    return None


def our_key_to_official(key: str) -> tuple[str, str] | None:
    """``(official file, official key)`` for our ``key``, or None when the table has no row for it."""
    for rule, _, ours in COMPILED_KEY_TABLE:
        m = ours.match(key)
        if m:
            values = _renumber(m.groupdict(), to_ours=False)
            if _allowed(rule, values):
                return rule.file.format(**values), rule.official.format(**values)
    return None


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOWN]) + (f", ... ({len(keys)} in all)" if len(keys) > _SHOWN else "")


def _by_file(pairs: list[tuple[str, str]]) -> str:
    files: dict[str, list[str]] = {}
    for file, key in pairs:
        files.setdefault(file, []).append(key)
    return "; ".join(f"{file}: {_listed(keys)}" for file, keys in files.items())


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def official_to_ours(files: Mapping[str, Mapping[str, torch.Tensor]],
                     expected: Mapping[str, torch.Tensor] | None = None, *, where: str = "") -> dict[str, torch.Tensor]:
    """Our state dict from the seven official state dicts (``{file name: state dict}``).

    Every official key must have a row in :data:`KEY_TABLE`. With ``expected`` (our model's
    ``state_dict()``), every one of its keys must be filled, no other key may appear, the
    shapes must agree, and the result is in ``expected``'s order. Raises
    :class:`OfficialCheckpointError` naming the files and keys; ``where`` (a folder) prefixes
    the message.
    """
    prefix = f"{where}: " if where else ""
    unknown = sorted(set(files) - set(OFFICIAL_FILES))
    if unknown:
        raise OfficialCheckpointError(f"{prefix}unexpected file(s) {', '.join(unknown)} (an official checkpoint is "
                                      f"{', '.join(OFFICIAL_FILES)})")
    missing_files = [f for f in OFFICIAL_FILES if f not in files]
    if missing_files:
        raise OfficialCheckpointError(f"{prefix}missing file(s) {', '.join(missing_files)}")
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, tuple[str, str]] = {}
    unmapped: list[tuple[str, str]] = []
    for file in OFFICIAL_FILES:
        state = files[file]
        if not isinstance(state, Mapping):
            raise OfficialCheckpointError(f"{prefix}{file} holds a {type(state).__name__}, not a state dict")
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise OfficialCheckpointError(f"{prefix}{file}: {key} is a {type(value).__name__}, not a tensor")
            ours = official_key_to_ours(file, str(key))
            if ours is None:
                unmapped.append((file, str(key)))
                continue
            out[ours] = value
            origin[ours] = (file, str(key))
    if unmapped:
        raise OfficialCheckpointError(f"{prefix}keys of no official SqueezeSegV3 layer (extra keys): "
                                      f"{_by_file(unmapped)}")
    if expected is not None:
        extra = [origin[k] for k in out if k not in expected]
        if extra:
            raise OfficialCheckpointError(f"{prefix}extra keys (not in this network; wrong depth in {ARCH_FILE}?): "
                                          f"{_by_file(extra)}")
        missing = [our_key_to_official(k) or ("(ours)", k) for k in expected if k not in out]
        if missing:
            raise OfficialCheckpointError(f"{prefix}missing keys: {_by_file(missing)}")
        for k, value in out.items():
            if value.shape != expected[k].shape:
                file, key = origin[k]
                raise OfficialCheckpointError(f"{prefix}{file}: {key} has shape {_shape(value)} in the file, but our "
                                              f"{k} needs {_shape(expected[k])} (another width or depth?)")
        out = {k: out[k] for k in expected}  # our state_dict order
    return out


def ours_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The seven official state dicts (``{file name: state dict}``) from our ``state_dict``;
    every key must have a row in :data:`KEY_TABLE` and every official file must be filled."""
    files: dict[str, dict[str, torch.Tensor]] = {f: {} for f in OFFICIAL_FILES}
    unmapped = []
    for key, value in state_dict.items():
        target = our_key_to_official(key)
        if target is None:
            unmapped.append(key)
            continue
        files[target[0]][target[1]] = value
    if unmapped:
        raise OfficialCheckpointError(f"keys with no counterpart in the official SqueezeSegV3 layout (is this "
                                      f"ssgv3_21 / ssgv3_53?): {_listed(unmapped)}")
    empty = [f for f, state in files.items() if not state]
    if empty:
        raise OfficialCheckpointError(f"nothing to write to official file(s) {', '.join(empty)}: the state dict "
                                      f"lacks those layers")
    return files


# --------------------------------------------------------------------------- reading a log folder


@dataclass
class OfficialCheckpoint:
    """An official log folder, read and checked: the seven state dicts, the raw yamls and what
    we take from them (depth, width, our :class:`LidarConfig`, the label map)."""

    folder: Path
    files: dict[str, dict[str, torch.Tensor]]
    arch: dict
    data: dict
    depth: int
    width: float
    config: LidarConfig
    label_map: LabelMap

    @property
    def model_name(self) -> str:
        return f"ssgv3_{self.depth}"

    @property
    def model_config(self) -> dict:
        return {"num_classes": NUM_CLASSES, "width": self.width}

    def build_model(self) -> SqueezeSegV3:
        """Our network with the mapped weights loaded strictly, in eval mode."""
        model = create_model(self.model_name, **self.model_config)
        state = official_to_ours(self.files, model.state_dict(), where=str(self.folder))
        model.load_state_dict(state, strict=True)
        return model.eval()


def _load_state(path: Path) -> dict:
    if not path.is_file():
        raise OfficialCheckpointError(f"{path}: missing (an official checkpoint folder holds "
                                      f"{', '.join(OFFICIAL_FILES)}, {ARCH_FILE} and {DATA_FILE})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused something
        m = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
        detail = re.split(r"\. Please ", m.group(1))[0] if m else type(exc).__name__
        if "Unsupported global" in detail:
            raise OfficialCheckpointError(f"{path}: holds pickled code ({detail}), which is not loaded: only tensors "
                                          f"are read (torch.load with weights_only=True)") from None
        raise OfficialCheckpointError(f"{path}: not a torch.save file of tensors; its pickled content is not loaded "
                                      f"(weights-only unpickler: {detail})") from None
    except Exception as exc:  # zip / legacy-format errors of a damaged or foreign file
        raise OfficialCheckpointError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, Mapping):
        raise OfficialCheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return dict(state)


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise OfficialCheckpointError(f"{path}: missing (the official log folder keeps {ARCH_FILE} and {DATA_FILE} "
                                      f"beside the weights)")
    data = path.read_bytes()
    if len(data) > _MAX_YAML_BYTES:
        raise OfficialCheckpointError(f"{path}: over {_MAX_YAML_BYTES} bytes; not a SqueezeSegV3 yaml")
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise OfficialCheckpointError(f"{path}: not valid yaml ({exc})") from None
    if not isinstance(doc, dict):
        raise OfficialCheckpointError(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


def _get(doc: dict, dotted: str, path: Path, kind: type | tuple = object) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise OfficialCheckpointError(f"{path}: missing {dotted}")
        value = value[part]
    numbers = (int, float)
    if kind is float or kind == numbers:
        ok = isinstance(value, numbers) and not isinstance(value, bool) and math.isfinite(value)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        what = getattr(kind, "__name__", "a number")
        raise OfficialCheckpointError(f"{path}: {dotted} must be {what}, got {value!r}")
    return value


def _numbers(doc: dict, dotted: str, path: Path, count: int) -> list[float]:
    values = _get(doc, dotted, path, list)
    if len(values) != count or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise OfficialCheckpointError(f"{path}: {dotted} must be {count} numbers (range, x, y, z, remission), "
                                      f"got {values!r}")
    return [float(v) for v in values]


def _arch_settings(arch: dict, path: Path) -> tuple[int, float, LidarConfig]:
    """Depth, width and our run config from ``arch_cfg.yaml``; anything we do not run is an error."""
    name = _get(arch, "backbone.name", path, str)
    if name != "SAC":
        raise OfficialCheckpointError(f"{path}: backbone.name is {name!r}; only SqueezeSegV3's 'SAC' backbone is "
                                      f"supported (the SqueezeSeg / Darknet backbones of the same code base are not)")
    decoder = arch.get("decoder", {}).get("name", "SAC") if isinstance(arch.get("decoder"), dict) else "SAC"
    if decoder != "SAC":
        raise OfficialCheckpointError(f"{path}: decoder.name is {decoder!r}; only the 'SAC' decoder is supported")
    depth = _get(arch, "backbone.extra.layers", path, int)
    if depth not in DEPTHS:
        raise OfficialCheckpointError(f"{path}: backbone.extra.layers is {depth}; SqueezeSegV3 has 21 or 53 layers")
    channels = {c: _get(arch, f"backbone.input_depth.{c}", path, bool) for c in ("range", "xyz", "remission")}
    if not all(channels.values()):
        off = ", ".join(c for c, on in channels.items() if not on)
        raise OfficialCheckpointError(f"{path}: backbone.input_depth leaves out {off}; unsupported (our network and "
                                      f"projection take all five channels: range, x, y, z, remission)")
    os_ = _get(arch, "backbone.OS", path, int)
    if os_ != OUTPUT_STRIDE:
        raise OfficialCheckpointError(f"{path}: backbone.OS is {os_}; unsupported (the released network has output "
                                      f"stride {OUTPUT_STRIDE})")
    crf = arch.get("post", {}).get("CRF", {}) if isinstance(arch.get("post"), dict) else {}
    if isinstance(crf, dict) and crf.get("use"):
        raise OfficialCheckpointError(f"{path}: post.CRF.use is true; the CRF post-processing is not supported")
    width = 1.0
    extra = _get(arch, "backbone.extra", path, dict)
    if WIDTH_KEY in extra:
        width = float(_get(arch, f"backbone.extra.{WIDTH_KEY}", path, (int, float)))
        if width <= 0:
            raise OfficialCheckpointError(f"{path}: backbone.extra.{WIDTH_KEY} must be > 0, got {width}")
    sensor = "dataset.sensor"
    knn = KnnConfig(
        # post.KNN.use is not taken: here kNN runs unless --no-knn (eval reports both anyway).
        k=_get(arch, "post.KNN.params.knn", path, int),
        window=_get(arch, "post.KNN.params.search", path, int),
        sigma=float(_get(arch, "post.KNN.params.sigma", path, (int, float))),
        cutoff=float(_get(arch, "post.KNN.params.cutoff", path, (int, float))),
        mode="reference",  # the official code refines with RangeNet++'s KNN.py
    )
    config = LidarConfig(
        model=f"ssgv3_{depth}", width=width,
        height=_get(arch, f"{sensor}.img_prop.height", path, int),
        image_width=_get(arch, f"{sensor}.img_prop.width", path, int),
        fov_up=float(_get(arch, f"{sensor}.fov_up", path, (int, float))),
        fov_down=float(_get(arch, f"{sensor}.fov_down", path, (int, float))),
        sensor_means=_numbers(arch, f"{sensor}.img_means", path, 5),
        sensor_stds=_numbers(arch, f"{sensor}.img_stds", path, 5),
        knn=knn,
    )
    try:
        config.check()
    except ValueError as exc:
        raise OfficialCheckpointError(f"{path}: {exc}") from None
    return depth, width, config


def _label_map(data: dict, path: Path) -> LabelMap:
    try:
        label_map = LabelMap.from_dict(data, source=str(path))
    except FormatError as exc:
        raise OfficialCheckpointError(str(exc)) from None
    if label_map.num_classes != NUM_CLASSES:
        raise OfficialCheckpointError(f"{path}: learning_map_inv has {label_map.num_classes} training classes; the "
                                      f"lidar task (and the official network's heads) have {NUM_CLASSES}")
    ignore = data.get("learning_ignore")
    if ignore is not None:
        ignored = sorted(int(t) for t, flag in ignore.items() if flag) if isinstance(ignore, dict) else None
        if ignored != [IGNORE_INDEX]:
            raise OfficialCheckpointError(f"{path}: learning_ignore must ignore class {IGNORE_INDEX} only, got "
                                          f"{ignore!r}")
    default = LabelMap.default()
    differ = [f for f in ("learning_map", "learning_map_inv", "names") if getattr(label_map, f) != getattr(default, f)]
    if differ:
        raise OfficialCheckpointError(f"{path}: {', '.join(differ)} differ(s) from the standard SemanticKITTI map; "
                                      f"our runs cannot carry another label map (eval and predict use the standard "
                                      f"one), so this checkpoint is not imported")
    return label_map


def read_official_folder(folder: str | Path) -> OfficialCheckpoint:
    """Read and check an official log folder: the seven state dicts (``torch.load(...,
    weights_only=True)`` only), ``arch_cfg.yaml`` and ``data_cfg.yaml``. The weights are not yet
    matched against a network (:meth:`OfficialCheckpoint.build_model` does that)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OfficialCheckpointError(f"{folder}: no such folder (an official SqueezeSegV3 log folder holds "
                                      f"{', '.join(OFFICIAL_FILES)}, {ARCH_FILE} and {DATA_FILE})")
    arch_path, data_path = folder / ARCH_FILE, folder / DATA_FILE
    arch, data = _load_yaml(arch_path), _load_yaml(data_path)
    depth, width, config = _arch_settings(arch, arch_path)
    label_map = _label_map(data, data_path)
    files = {name: _load_state(folder / name) for name in OFFICIAL_FILES}
    return OfficialCheckpoint(folder, files, arch, data, depth, width, config, label_map)


def load_official(folder: str | Path, *, source: str | None = None) -> LoadedRun:
    """An official log folder as a :class:`LoadedRun` of the lidar task (CPU, eval mode; the
    task's ``attach`` has not run yet). Used by ``--model official:<folder>``."""
    ckpt = read_official_folder(folder)
    model = ckpt.build_model()
    meta = {"model_name": ckpt.model_name, "model_config": ckpt.model_config, "config": config_to_dict(ckpt.config),
            "metrics": {}, "official_folder": str(ckpt.folder)}
    return LoadedRun("lidar", model, ckpt.model_name, ckpt.config, source or str(folder), None, meta)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_official(folder: str | Path, out: str | Path, *, log: Callable[[str], Any] = print) -> Path:
    """Convert an official log folder into one of our run folders ``out`` (``model.safetensors``
    + ``model.json`` with the run config, ``config.yaml``, ``imported.json`` naming the source
    files and their SHA-256); returns ``out``, which ``load_run`` / ``--model`` accept."""
    out = Path(out)
    if (out / "model.json").exists():
        raise FileExistsError(f"--out {out}: already holds a model (model.json); choose another folder")
    ckpt = read_official_folder(folder)
    model = ckpt.build_model()
    cfg = ckpt.config
    log(f"{ckpt.folder}: SSGV3-{ckpt.depth}" + (f" (width {ckpt.width})" if ckpt.width != 1 else "")
        + f", {sum(len(s) for s in ckpt.files.values())} tensors in {len(OFFICIAL_FILES)} files, "
        f"{cfg.height}x{cfg.image_width} range images, fov {cfg.fov_up:+g}..{cfg.fov_down:+g} deg, kNN k={cfg.knn.k} "
        f"window={cfg.knn.window} sigma={cfg.knn.sigma:g} cutoff={cfg.knn.cutoff:g} (use: {cfg.knn.enabled})")
    out.mkdir(parents=True, exist_ok=True)
    provenance = {"source": str(ckpt.folder.resolve()), "format": "SqueezeSegV3 log folder",
                  "files": {name: _sha256(ckpt.folder / name) for name in (*OFFICIAL_FILES, ARCH_FILE, DATA_FILE)}}
    write_text_atomic(out / "imported.json", json.dumps(provenance, indent=1) + "\n")
    save_config(cfg, out / "config.yaml")
    save_checkpoint(out / "model", model, model_name=ckpt.model_name, model_config=ckpt.model_config, step=0,
                    config=cfg)
    log(f"wrote {out / 'model.safetensors'} (+ .json); use it with: pixelwise lidar eval --model {out} --data ...")
    return out


# --------------------------------------------------------------------------- writing a log folder


def _arch_yaml(model: SqueezeSegV3, cfg: LidarConfig) -> dict:
    opt = cfg.train.optimizer
    extra: dict[str, Any] = {"layers": model.depth}
    if model.width != 1:
        extra[WIDTH_KEY] = float(model.width)
    return {
        "train": {"loss": "xentropy", "max_epochs": 150, "lr": float(opt.lr), "wup_epochs": float(cfg.warmup_epochs),
                  "momentum": float(opt.momentum), "lr_decay": float(cfg.epoch_decay),
                  "w_decay": float(opt.weight_decay), "batch_size": int(cfg.train.batch_size), "report_batch": 1,
                  "report_epoch": 1, "epsilon_w": float(cfg.class_weight_eps), "save_summary": False,
                  "save_scans": False, "show_scans": False, "workers": 4},
        "backbone": {"name": "SAC", "input_depth": {"range": True, "xyz": True, "remission": True},
                     "dropout": float(model.dropout_p), "bn_d": 0.01, "OS": OUTPUT_STRIDE, "train": True,
                     "extra": extra},
        "decoder": {"name": "SAC", "dropout": float(model.dropout_p), "bn_d": 0.01, "train": True, "extra": False},
        "head": {"name": "segmentation", "train": True, "dropout": float(model.dropout_p)},
        "post": {"CRF": {"use": False, "train": True, "params": False},
                 "KNN": {"use": bool(cfg.knn.enabled), "params": {"knn": int(cfg.knn.k), "search": int(cfg.knn.window),
                                                                  "sigma": float(cfg.knn.sigma),
                                                                  "cutoff": float(cfg.knn.cutoff)}}},
        "dataset": {"labels": "kitti", "scans": "kitti", "max_points": 150000,
                    "sensor": {"name": "HDL64", "type": "spherical", "fov_up": float(cfg.fov_up),
                               "fov_down": float(cfg.fov_down),
                               "img_prop": {"width": int(cfg.image_width), "height": int(cfg.height)},
                               "img_means": [float(v) for v in cfg.sensor_means],
                               "img_stds": [float(v) for v in cfg.sensor_stds]}},
    }


def write_official_folder(model: torch.nn.Module, folder: str | Path, *, config: LidarConfig | None = None,
                          label_map: LabelMap | None = None) -> Path:
    """Write our ``ssgv3_21`` / ``ssgv3_53`` as an official log folder: the seven state dicts
    (``torch.save``, written atomically), ``arch_cfg.yaml`` (network, sensor and normalisation,
    kNN and training settings from ``config``, default :class:`LidarConfig`) and
    ``data_cfg.yaml`` (``label_map``, default the standard SemanticKITTI map). Returns ``folder``.

    A model of width other than 1 gets ``backbone.extra.pixelwise_width`` (read back by
    :func:`read_official_folder`; the official code cannot build it)."""
    model = unwrap_model(model)
    if not isinstance(model, SqueezeSegV3):
        raise OfficialCheckpointError(f"only the released network (ssgv3_21 / ssgv3_53) has an official layout, got "
                                      f"{type(model).__name__}")
    if model.num_classes != NUM_CLASSES or model.in_channels != 5:
        raise OfficialCheckpointError(f"the official network has 5 input channels and {NUM_CLASSES} classes, this one "
                                      f"{model.in_channels} and {model.num_classes}")
    cfg = config or LidarConfig(model=f"ssgv3_{model.depth}", width=model.width)
    if cfg.model != f"ssgv3_{model.depth}":
        raise OfficialCheckpointError(f"config.model is {cfg.model}, the model is ssgv3_{model.depth}")
    cfg.check()
    label_map = label_map or LabelMap.default()
    files = ours_to_official({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, state in files.items():
        buffer = io.BytesIO()
        # The legacy (pre-zip) format: the official code pins torch 1.1, which cannot read zip files.
        torch.save(state, buffer, _use_new_zipfile_serialization=False)
        write_bytes_atomic(folder / name, buffer.getvalue())
    data = {"name": "kitti", **label_map.to_dict(),
            "split": {name: list(seqs) for name, seqs in SPLITS.items()}}
    for name, doc in ((ARCH_FILE, _arch_yaml(model, cfg)), (DATA_FILE, data)):
        write_text_atomic(folder / name, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    return folder

