"""File readers behind one protocol: ``open_file(path)`` gives a file's images, each an ``ImageSource``."""

from fairimage.formats.base import ImageSource, OpenedFile
from fairimage.formats.registry import is_zarr_dir, open_file, sniff_format

__all__ = ["ImageSource", "OpenedFile", "is_zarr_dir", "open_file", "sniff_format"]
