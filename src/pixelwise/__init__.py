"""pixelwise: pixel-level prediction with content-adaptive operators."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pixelwise")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
