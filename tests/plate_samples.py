"""Plate folders as vendors' software writes them, made by code: small images with known pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from fairimage.model.plates.layout import row_name


def field_pixels(
    row: int, column: int, field: int, channel: int, shape: tuple[int, int] = (24, 32)
) -> np.ndarray:
    """Pixels that say where they came from: a ramp offset by well, field and channel (wrapping around
    65536 for wells far down a 1536-well plate)."""
    base = (row * 100 + column) * 40 + field * 8 + channel
    ramp = np.arange(shape[0] * shape[1], dtype=np.int64).reshape(shape) + base * 7
    return (ramp % 65536).astype(np.uint16)


def imagexpress(
    folder: Path,
    wells: list[tuple[int, int]],
    fields: int = 2,
    channels: int = 2,
    plate: str = "Screen01",
    shape: tuple[int, int] = (24, 32),
) -> Path:
    """MetaXpress names: PLATE_B02_s1_w1.tif, plus the _thumb previews it writes beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    for row, column in wells:
        well = f"{row_name(row)}{column + 1:02d}"
        for field in range(fields):
            for channel in range(channels):
                pixels = field_pixels(row, column, field, channel, shape)
                tifffile.imwrite(folder / f"{plate}_{well}_s{field + 1}_w{channel + 1}.tif", pixels)
                tifffile.imwrite(
                    folder / f"{plate}_{well}_s{field + 1}_w{channel + 1}_thumb.tif", pixels[::4, ::4]
                )
    return folder


HARMONY_NS = "http://www.perkinelmer.com/PEHH/HarmonyV6"


def harmony(
    folder: Path, wells: list[tuple[int, int]], fields: int = 2, shape: tuple[int, int] = (24, 32)
) -> Path:
    """An Operetta CLS export: Images/ with r01c01f01p01-ch1sk1fk1fl1.tiff files and Index.idx.xml."""
    images = folder / "Images"
    images.mkdir(parents=True, exist_ok=True)
    channels = [("HOECHST 33342", 461, 355), ("Alexa 488", 519, 488)]
    entries = []
    for row, column in wells:
        for field in range(fields):
            for channel, (name, emission, excitation) in enumerate(channels):
                url = f"r{row + 1:02d}c{column + 1:02d}f{field + 1:02d}p01-ch{channel + 1}sk1fk1fl1.tiff"
                tifffile.imwrite(images / url, field_pixels(row, column, field, channel, shape))
                entries.append(
                    f'<Image Version="1"><id>{row}{column}{field}{channel}</id><URL>{url}</URL>'
                    f"<Row>{row + 1}</Row><Col>{column + 1}</Col><FieldID>{field + 1}</FieldID>"
                    f"<PlaneID>1</PlaneID><TimepointID>0</TimepointID><ChannelID>{channel + 1}</ChannelID>"
                    f"<ChannelName>{name}</ChannelName>"
                    f'<ImageResolutionX Unit="m">6.5E-07</ImageResolutionX>'
                    f'<ImageResolutionY Unit="m">6.5E-07</ImageResolutionY>'
                    f'<PositionX Unit="m">{field * 1e-4}</PositionX><PositionY Unit="m">0</PositionY>'
                    f'<MainEmissionWavelength Unit="nm">{emission}</MainEmissionWavelength>'
                    f'<MainExcitationWavelength Unit="nm">{excitation}</MainExcitationWavelength></Image>'
                )
    index = (
        f'<?xml version="1.0" encoding="utf-8"?><EvaluationInputData xmlns="{HARMONY_NS}" Version="2">'
        "<Plates><Plate><PlateID>plate-7</PlateID><Name>Phenix 7</Name>"
        "<PlateTypeName>96 PerkinElmer CellCarrier</PlateTypeName>"
        "<PlateRows>8</PlateRows><PlateColumns>12</PlateColumns></Plate></Plates>"
        f"<Images>{''.join(entries)}</Images></EvaluationInputData>"
    )
    (images / "Index.idx.xml").write_text(index)
    return folder


def blobs(
    rng: np.random.Generator, shape: tuple[int, int], count: int, radius: float, peak: float
) -> np.ndarray:
    """Cells: Gaussian blobs of ``peak`` counts on a background of 100, with shot noise; uint16."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    signal = np.zeros(shape, np.float32)
    for _ in range(count):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        signal += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
    return rng.poisson(100 + peak * np.clip(signal, 0, 1)).astype(np.uint16)


def box_blur(plane: np.ndarray, size: int) -> np.ndarray:
    """A plane seen out of focus: a size x size mean filter (edges repeat)."""
    padded = np.pad(plane.astype(np.float64), size // 2, mode="edge")
    kernel = np.ones(size) / size
    rows = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)
    both = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, rows)
    return both[: plane.shape[0], : plane.shape[1]].astype(plane.dtype)


def ome_zarr_plate_v04(path: Path, wells: list[tuple[int, int]], fields: int = 2) -> Path:
    """An OME-Zarr 0.4 plate (zarr v2) written by ome-zarr-py, the reference implementation: 2 x 3 wells,
    two-channel fields with the pixels of ``field_pixels``."""
    return ome_zarr_plate(path, wells, fields, "0.4")


def ome_zarr_plate(path: Path, wells: list[tuple[int, int]], fields: int = 2, version: str = "0.5") -> Path:
    """An OME-Zarr plate of ``version`` (0.4: zarr v2, 0.5: zarr v3) written by ome-zarr-py: 2 x 3 wells,
    two-channel fields with the pixels of ``field_pixels``."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    rows, columns = ["A", "B"], ["1", "2", "3"]
    paths = [f"{rows[r]}/{columns[c]}" for r, c in wells]
    write_plate_metadata(root, rows, columns, paths, fmt=fmt, name="Legacy plate")
    for (r, c), well_path in zip(wells, paths, strict=True):
        well = root.require_group(well_path)
        write_well_metadata(well, [{"path": str(f)} for f in range(fields)], fmt=fmt)
        for f in range(fields):
            pixels = np.stack([field_pixels(r, c, f, channel) for channel in range(2)])
            write_image(pixels, well.require_group(str(f)), axes="cyx", fmt=fmt, scale_factors=(2,))
    return path
