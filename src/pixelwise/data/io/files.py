"""What every reader checks before it opens a file, and the errors it raises.

* :func:`check_regular_file`: the path is a regular file -- not a directory, FIFO, character or
  block device or socket (opening a FIFO waits for a writer forever, ``/dev/zero`` never ends) --
  and no larger than its format allows; checked with ``os.stat`` *before* the file is opened;
* :func:`read_regular_file`: that check, then the bytes, never more than the limit (a file that
  grows while it is read is refused too);
* :func:`check_within_root`: a path found while scanning a dataset folder does not lead outside
  that folder through a symbolic link, unless the caller passes ``follow_symlinks=True``.

Both raise subclasses of :class:`ValueError` whose message names the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "PHOTO_SUFFIXES",
    "FormatError",
    "OutsideRootError",
    "PathLike",
    "as_path",
    "check_regular_file",
    "image_files",
    "check_within_root",
    "read_regular_file",
]


class FormatError(ValueError):
    """A file does not hold what its format promises (bad magic, header, size, mode...), is not a
    regular file, or is larger than its format allows."""


class OutsideRootError(ValueError):
    """A path found while scanning a dataset folder is a symbolic link that leads outside it."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def as_path(path, name: str = "path") -> Path:
    """``Path(path)`` after checking that ``path`` is a str or os.PathLike (TypeError naming
    the argument ``name`` otherwise)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def check_regular_file(path: PathLike, what: str, max_bytes: int | None) -> int:
    """Check, before anything opens it, that ``path`` is a regular file of at most ``max_bytes``.

    Symbolic links are followed: a link to a device is refused like the device.

    Args:
        path: the file.
        what: the kind of file, for the message (``"PFM"``, ``"SemanticKITTI scan"`` ...).
        max_bytes: the largest size the format allows, or None for no limit.

    Returns:
        The file's size in bytes.

    Raises:
        FileNotFoundError: the file does not exist.
        FormatError: it is a directory, FIFO, device or socket, or larger than ``max_bytes``;
            the message names the file.

    Example:
        >>> check_regular_file("/dev/null", "PFM", 1 << 20)
        Traceback (most recent call last):
        ...
        pixelwise.data.io.files.FormatError: /dev/null: expected a regular PFM file, found a character device
    """
    name = os.fspath(path)
    mode_size = os.stat(path)
    if not stat.S_ISREG(mode_size.st_mode):
        kind = next((k for test, k in _KINDS if test(mode_size.st_mode)), "something else")
        raise FormatError(f"{name}: expected a regular {what} file, found {kind}")
    if max_bytes is not None and mode_size.st_size > max_bytes:
        raise FormatError(
            f"{name}: {mode_size.st_size} bytes is more than a {what} file may hold "
            f"({max_bytes} bytes at most)"
        )
    return mode_size.st_size


def read_regular_file(path: PathLike, what: str, max_bytes: int | None) -> bytes:
    """The bytes of ``path`` after :func:`check_regular_file`; at most ``max_bytes`` are read.

    Raises:
        FileNotFoundError: the file does not exist.
        FormatError: as :func:`check_regular_file`, or the file grew past ``max_bytes`` while it
            was read.
    """
    check_regular_file(path, what, max_bytes)
    with open(path, "rb") as fh:
        data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise FormatError(
            f"{os.fspath(path)}: grew past the {max_bytes} bytes a {what} file may hold while it was read"
        )
    return data


def check_within_root(path: PathLike, root: PathLike, *, follow_symlinks: bool = False) -> None:
    """Refuse a path found while scanning ``root`` that is a symbolic link leading outside ``root``.

    Only ``path`` itself is examined (one ``lstat``; a link is then resolved in full), so a scan
    checks every folder it descends into as well as every file it finds. Links that stay inside
    ``root`` are always fine; ``root`` itself may be a link.

    Args:
        path: a file or folder found under ``root``.
        root: the data root the scan started from.
        follow_symlinks: allow links that lead outside ``root`` (the check is skipped).

    Raises:
        OutsideRootError: ``path`` is a link resolving outside ``root``; the message names the
            link and its target.
    """
    if follow_symlinks or not os.path.islink(path):
        return
    target = os.path.realpath(path)
    real_root = os.path.realpath(root)
    if target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep):
        return
    raise OutsideRootError(
        f"{os.fspath(path)}: symbolic link to {target}, outside the data root {os.fspath(root)}; "
        "pass follow_symlinks=True to read files through such links"
    )


# Photo formats a user's folder of images may hold (what Pillow reads for prediction).
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")


def image_files(images: PathLike, what: str = "--images") -> list[Path]:
    """An image file, or the image files of a folder (by suffix, sorted); ``what`` names the
    argument in errors."""
    images = Path(images)
    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{what} {images}: no image files ({', '.join(PHOTO_SUFFIXES)})")
        return files
    if images.is_file():
        return [images]
    raise FileNotFoundError(f"{what} {images}: no such file or folder")
