"""Sample inputs the tests write with the formats' own libraries (nothing is committed)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import numpy as np
import tifffile
import zarr
from PIL import Image


def ramp(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    """Distinct, non-trivial values (a ramp plus noise), so a transposed or shifted read cannot pass."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    base = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if info is None:
        return (base + rng.normal(size=shape)).astype(dtype)
    span = float(info.max) - float(info.min)
    values = (base * 7919 + rng.integers(0, 1000, size=shape)) % span + float(info.min)
    return values.astype(dtype)


def ome_tiff(path: Path, data: np.ndarray, axes: str = "CZYX", **metadata: object) -> Path:
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata={"axes": axes, **metadata})
    return path


def multi_series_ome_tiff(path: Path, first: np.ndarray, second: np.ndarray) -> Path:
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(first, photometric="minisblack", metadata={"axes": "YX", "Name": "overview"})
        tif.write(
            second,
            photometric="minisblack",
            metadata={
                "axes": "ZYX",
                "Name": "detail",
                "PhysicalSizeX": 0.5,
                "PhysicalSizeY": 0.5,
                "PhysicalSizeZ": 2.0,
            },
        )
    return path


def multifile_ome_tiff(
    folder: Path, data: np.ndarray, name: str = "vol_z{}.ome.tif", size_z_um: float = 0.5
) -> list[Path]:
    """A zyx volume as a multi-file OME-TIFF, one file per plane, as Bio-Formats and acquisition software
    write them: every file carries the whole OME-XML, naming each plane's file by TiffData UUID FileName."""
    folder.mkdir(parents=True, exist_ok=True)
    depth, rows, columns = data.shape
    uuids = [f"urn:uuid:{uuid.UUID(int=random.Random(z).getrandbits(128))}" for z in range(depth)]
    planes = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="{name.format(z)}">{uuids[z]}</UUID>'
        "</TiffData>"
        for z in range(depth)
    )
    paths = []
    for z in range(depth):
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" UUID="{uuids[z]}">'
            '<Image ID="Image:0" Name="volume"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
            f'Type="{data.dtype.name}" SizeX="{columns}" SizeY="{rows}" SizeZ="{depth}" SizeC="1" SizeT="1" '
            f'PhysicalSizeX="0.1" PhysicalSizeY="0.1" PhysicalSizeZ="{size_z_um}">'
            f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{planes}</Pixels></Image></OME>'
        )
        paths.append(folder / name.format(z))
        tifffile.imwrite(paths[-1], data[z], description=xml, metadata=None)
    return paths


def pyramidal_ome_tiff(path: Path, data: np.ndarray) -> Path:
    """A tiled pyramidal OME-TIFF (sub-resolutions in SubIFDs), as bioformats and QuPath write them."""
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        options = {"tile": (128, 128), "photometric": "minisblack", "compression": "zlib"}
        tif.write(
            data, subifds=2, metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25}, **options
        )
        tif.write(data[::2, ::2], subfiletype=1, **options)
        tif.write(data[::4, ::4], subfiletype=1, **options)
    return path


def imagej_hyperstack(path: Path, data: np.ndarray) -> Path:
    """TZCYX data as an ImageJ hyperstack, 0.3 µm pixels, 2.5 µm slices, 0.5 s frames."""
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.3, 1 / 0.3),
        metadata={"axes": "TZCYX", "spacing": 2.5, "unit": "um", "finterval": 0.5},
    )
    return path


def png(path: Path, data: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(data, mode).save(path) if mode else Image.fromarray(data).save(path)
    return path


def ome_zarr_v04(path: Path, data: np.ndarray, axes: str = "zyx") -> Path:
    """An OME-Zarr 0.4 image (zarr v2) written by ome-zarr-py, the reference implementation."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    scale = dict(zip("zyx", (2.0, 0.5, 0.5), strict=True))
    write_image(
        data,
        root,
        axes=axes,
        fmt=FormatV04(),
        scale_factors=(2,),
        scale={axis: scale[axis] for axis in axes},
        axes_units={axis: "micrometer" for axis in axes},
    )
    return path


def ome_zarr_v05(path: Path, data: np.ndarray, axes: str = "cyx") -> Path:
    """An OME-Zarr 0.5 image (zarr v3) written by ome-zarr-py."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_image

    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    write_image(
        data,
        root,
        axes=axes,
        fmt=FormatV05(),
        scale_factors=(2,),
        scale={"c": 1.0, "y": 0.65, "x": 0.65},
        axes_units={"y": "micrometer", "x": "micrometer"},
    )
    return path


def bioformats2raw(path: Path, series: list[np.ndarray]) -> Path:
    """The bioformats2raw layout 3: one OME-Zarr 0.4 image per series under 0/, 1/, ... and OME/."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    for index, data in enumerate(series):
        ome_zarr_v04(path / str(index), data, axes="yx")
    ome = root.create_group("OME")
    ome.attrs["series"] = [str(i) for i in range(len(series))]
    return path


def dicom_ct(path: Path, offset: int = 0, modality: str = "CT") -> Path:
    """A CT instance made from pydicom's CT_small with its own UIDs and pixels shifted by ``offset`` (with
    ``modality`` US, one that quarantine holds back for burned-in text)."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    instance = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    instance.StudyInstanceUID, instance.SeriesInstanceUID = generate_uid(), generate_uid()
    instance.SOPInstanceUID = generate_uid()
    instance.file_meta.MediaStorageSOPInstanceUID = instance.SOPInstanceUID
    instance.Modality = modality
    instance.PixelData = (instance.pixel_array + offset).astype(instance.pixel_array.dtype).tobytes()
    instance.save_as(path, enforce_file_format=True)
    return path
