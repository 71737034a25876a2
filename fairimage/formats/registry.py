"""Picks the reader for an input by its first bytes (or, for a folder, by its zarr metadata files)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from fairimage.formats.base import OpenedFile, Reader
from fairimage.formats.dicom import DICM_OFFSET, DicomReader
from fairimage.formats.omezarr import OmeZarrReader, is_zarr_dir
from fairimage.formats.raster import RasterReader
from fairimage.formats.tiff import TiffReader
from fairimage.model.errors import CorruptFileError, UnsupportedError

# DICOM first: its 'DICM' at byte 128 is conclusive, while its preamble may hold a TIFF header (a "dual
# personality" file, PS3.10 7.1), as pydicom's CT_small.dcm does.
READERS: tuple[Reader, ...] = (DicomReader(), TiffReader(), RasterReader())
SUPPORTED = "TIFF, OME-TIFF, PNG, JPEG, DICOM or OME-Zarr"


def sniff_format(path: Path) -> Reader | None:
    """The reader whose magic bytes start the file, if any."""
    with path.open("rb") as f:
        head = f.read(DICM_OFFSET + 4)  # DICOM's magic follows a 128-byte preamble
    return next((reader for reader in READERS if reader.sniff(head)), None)


def open_file(path: Path) -> AbstractContextManager[OpenedFile]:
    """Open a file or OME-Zarr folder; raises CorruptFileError or UnsupportedError with a one-line reason."""
    if path.is_dir():
        if is_zarr_dir(path):
            return OmeZarrReader().open(path)
        raise UnsupportedError(f"{path}: a folder that is not an OME-Zarr image")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path}: the file is empty (0 bytes); copy it again from its source")
    reader = sniff_format(path)
    if reader is None:
        raise UnsupportedError(f"{path}: not an image fairimage reads ({SUPPORTED})")
    return reader.open(path)


__all__ = ["SUPPORTED", "is_zarr_dir", "open_file", "sniff_format"]
