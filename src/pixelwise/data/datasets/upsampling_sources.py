"""Where joint-upsampling data comes from, named by a short spec string.

    synthetic               procedurally generated pairs (the embedded default)
    motorcycle              the Middlebury scene shipped with scikit-image (held-out test scene)
    middlebury:<root>       Middlebury stereo folders (im0.png + disp0GT.pfm)
    nyu:<file.mat>[@split]  NYU Depth V2 labeled (train = first 1000, test = the rest)
    sintel:<root>[@pass]    MPI Sintel training set, clean pass by default
    folder:<root>           images/<name>.png + targets/<name>.(png|npy|pfm|flo)
"""

from __future__ import annotations

from ..synthetic.upsampling import SyntheticUpsampling
from .folder import FolderDataset
from .middlebury import Middlebury, load_motorcycle
from .nyu import NYUDepthV2
from .sintel import Sintel

SPECS = ("synthetic", "motorcycle", "middlebury:<root>", "nyu:<file.mat>[@train|test|all]",
         "sintel:<root>[@clean|final]", "folder:<root>")


def open_dataset(spec: str, kind: str, *, synthetic_length: int = 1000, synthetic_size: int = 256,
                 seed: int = 0, split: str = "train", target_scale: float = 1000.0,
                 follow_symlinks: bool = False):
    """Open the dataset named by ``spec`` (see the module docstring) for ``kind`` depth or flow.

    ``follow_symlinks`` is passed to the folder readers (Middlebury, Sintel, folder): by default
    a file or folder found in the data root that is a symbolic link leading outside it is an
    error.
    """
    source, _, arg = spec.partition(":")
    if source == "synthetic":
        return SyntheticUpsampling(synthetic_length, (synthetic_size, synthetic_size), kind=kind, seed=seed)
    if source == "motorcycle":
        _need(kind, "depth", spec)
        return [load_motorcycle()]
    if not arg:
        raise ValueError(f"--data {spec!r}: {source!r} needs a path, e.g. {source}:/path/to/data")
    if source == "middlebury":
        _need(kind, "depth", spec)
        return Middlebury(arg, follow_symlinks=follow_symlinks)
    if source == "nyu":
        _need(kind, "depth", spec)
        path, _, nyu_split = arg.partition("@")
        return NYUDepthV2(path, split=nyu_split or ("train" if split == "train" else "test"))
    if source == "sintel":
        _need(kind, "flow", spec)
        root, _, pass_ = arg.partition("@")
        return Sintel(root, split="training", pass_=pass_ or "clean", follow_symlinks=follow_symlinks)
    if source == "folder":
        return FolderDataset(arg, kind=kind, target_scale=target_scale, follow_symlinks=follow_symlinks)
    raise ValueError(f"--data {spec!r}: unknown source {source!r}; expected one of: {', '.join(SPECS)}")


def _need(kind: str, expected: str, spec: str) -> None:
    if kind != expected:
        raise ValueError(f"--data {spec!r} holds {expected} maps, but the task kind is {kind!r}")
