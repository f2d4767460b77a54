"""NYU Depth V2, labeled subset (``nyu_depth_v2_labeled.mat``, MATLAB v7.3 = HDF5).

In the file (as h5py sees it, i.e. MATLAB's column-major axes reversed)::

    images  uint8   (N, 3, W, H)     RGB
    depths  float   (N, W, H)        metres

with N = 1449, H = 480, W = 640 for the real file. Items are transposed back to (H, W).
Splits follow Su et al. 2019 / DJF: "train" = the first 1000 images, "test" = the remaining
449, "all" = everything. Depth <= 0 or non-finite is invalid.

The HDF5 file is opened lazily, on first access in each process (h5py handles must not cross
a fork), so the dataset can be used with DataLoader workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io.files import FormatError, check_regular_file
from .folder import make_item, valid_mask

__all__ = ["NYUDepthV2", "NYU_SPLITS", "NYU_TRAIN_COUNT"]

NYU_SPLITS = ("train", "test", "all")
NYU_TRAIN_COUNT = 1000
_LAYOUT = (
    "expected a MATLAB v7.3 (HDF5) file such as nyu_depth_v2_labeled.mat with datasets "
    "'images' uint8 (N, 3, W, H) and 'depths' float (N, W, H)"
)


class NYUDepthV2(Dataset):
    """NYU Depth V2 labeled RGB images with their depth maps in metres (kind "depth")."""

    kind = "depth"

    def __init__(
        self, path: str | os.PathLike, split: str = "test", *, n_train: int = NYU_TRAIN_COUNT
    ):
        import h5py

        if split not in NYU_SPLITS:
            raise ValueError(f"split must be one of {NYU_SPLITS}, got {split!r}")
        if int(n_train) < 0:
            raise ValueError(f"n_train must be >= 0, got {n_train}")
        self.path = Path(path)
        self.split = split
        name = str(self.path)
        if not self.path.exists():
            raise ValueError(f"dataset file {name} does not exist; {_LAYOUT}")
        check_regular_file(self.path, "HDF5 (.mat v7.3)", None)  # h5py reads only what it needs
        if not h5py.is_hdf5(self.path):
            with open(self.path, "rb") as fh:
                head = fh.read(20)
            hint = (
                " (it is an old-style MATLAB v5 .mat file; re-save it with save(..., '-v7.3'))"
                if head.startswith(b"MATLAB 5.0") else ""
            )
            raise FormatError(f"{name}: not an HDF5 file{hint}; {_LAYOUT}, found {head!r}")
        try:
            with h5py.File(self.path, "r") as f:
                missing = [k for k in ("images", "depths") if not isinstance(f.get(k), h5py.Dataset)]
                if missing:
                    raise FormatError(
                        f"{name}: missing dataset(s) {missing}; {_LAYOUT}, found keys "
                        f"{sorted(f.keys())}"
                    )
                ishape, idtype = f["images"].shape, f["images"].dtype
                dshape, ddtype = f["depths"].shape, f["depths"].dtype
        except OSError as exc:
            raise FormatError(f"{name}: unreadable HDF5 file: {exc}") from None
        if len(ishape) != 4 or ishape[1] != 3:
            raise FormatError(f"{name}: 'images' must be (N, 3, W, H), found shape {ishape}")
        if idtype != np.uint8:
            raise FormatError(f"{name}: 'images' must be uint8, found {idtype}")
        if len(dshape) != 3:
            raise FormatError(f"{name}: 'depths' must be (N, W, H), found shape {dshape}")
        if not np.issubdtype(ddtype, np.floating):
            raise FormatError(f"{name}: 'depths' must be floating point (metres), found {ddtype}")
        if ishape[0] != dshape[0]:
            raise FormatError(
                f"{name}: mismatched N: 'images' has {ishape[0]} entries, 'depths' has {dshape[0]}"
            )
        if tuple(ishape[2:]) != tuple(dshape[1:]):
            raise FormatError(
                f"{name}: mismatched sizes: 'images' are (W, H) = {tuple(ishape[2:])}, "
                f"'depths' are (W, H) = {tuple(dshape[1:])}"
            )
        total = int(ishape[0])
        self.total = total
        self.width, self.height = int(ishape[2]), int(ishape[3])
        n_train = int(n_train)
        if split == "train":
            self.indices = list(range(min(n_train, total)))
        elif split == "test":
            self.indices = list(range(min(n_train, total), total))
        else:
            self.indices = list(range(total))
        if not self.indices:
            raise ValueError(
                f"dataset file {name} contains no samples for split {split!r} "
                f"(N = {total}, train = first {n_train}); {_LAYOUT}"
            )
        self._file = None
        self._pid = None

    def _h5(self):
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file = h5py.File(self.path, "r")  # a fresh handle per process
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            try:
                self._file.close()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass
        self._file = None
        self._pid = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        i = self.indices[index]
        f = self._h5()
        img = np.asarray(f["images"][i])  # (3, W, H)
        depth = np.asarray(f["depths"][i], dtype=np.float32)  # (W, H)
        image = img.transpose(2, 1, 0).astype(np.float32) / 255.0  # (H, W, 3)
        depth = np.ascontiguousarray(depth.T)  # (H, W)
        return make_item(image, depth, valid_mask(depth, "depth", positive=True), f"nyu_{i:04d}")

    def __repr__(self) -> str:
        return f"NYUDepthV2(path={str(self.path)!r}, split={self.split!r}, n={len(self)})"
