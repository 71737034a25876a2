"""Property tests: any dtype, any 2D-5D shape (odd sizes, single-pixel edges) survives the writer exactly,
and the pyramid follows the spec's arithmetic."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from ome_zarr_models.v05.image import Image as NgffImage

from fairimage.formats.base import Region
from fairimage.model.image import ImageMetadata, default_channels, make_axes
from fairimage.ngff.pyramid import downsample_2x
from fairimage.ngff.writer import (
    Part,
    WriteOptions,
    complete_pyramid,
    create_image,
    finish_image,
    plan_image,
    write_image,
    write_planes,
)
from fairimage.storage import ImagePrefix, LocalStore

DTYPES = [
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
    "bool",
]
AXES = ["yx", "cyx", "zyx", "tyx", "czyx", "tzyx", "tczyx"]


class ArraySource:
    """An in-memory ImageSource, as a reader would give it."""

    def __init__(self, pixels: np.ndarray, axes: str) -> None:
        self.pixels = pixels
        count = pixels.shape[axes.index("c")] if "c" in axes else 1
        self.metadata = ImageMetadata(
            name="array",
            axes=make_axes(axes),
            shape=pixels.shape,
            dtype=pixels.dtype.name,
            scale=(1.0,) * len(axes),
            channels=default_channels(count),
        )

    def read(self, region: Region) -> np.ndarray:
        return self.pixels[region]


@st.composite
def images(draw: st.DrawFn) -> tuple[np.ndarray, str]:
    axes = draw(st.sampled_from(AXES))
    sizes = {
        "t": st.integers(1, 2),
        "c": st.integers(1, 3),
        "z": st.integers(1, 3),
        "y": st.integers(1, 70),
        "x": st.integers(1, 70),
    }
    shape = tuple(draw(sizes[a]) for a in axes)
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    elements = st.floats(-1e6, 1e6, width=32) if dtype.kind == "f" else None
    return draw(arrays(dtype, shape, elements=elements)), axes


@settings(max_examples=80, deadline=None)
@given(images(), st.sampled_from([0, 0, 1, 2, 3]))
def test_level_0_is_exact_and_every_level_is_valid(image: tuple[np.ndarray, str], shard_chunks: int) -> None:
    pixels, axes = image
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "image.ome.zarr"
        target = ImagePrefix(LocalStore(folder), "image.ome.zarr")
        # A tiny chunk target forces several chunks and pyramid levels even for small arrays.
        options = WriteOptions(chunk_bytes=256, shard_chunks=shard_chunks)
        written = write_image(ArraySource(pixels, axes), target, options)
        group = zarr.open_group(str(store), mode="r")
        expected = pixels.astype(np.uint8) if pixels.dtype == bool else pixels
        np.testing.assert_array_equal(group["0"][...], expected)
        NgffImage.from_zarr(group)
        for index, level in enumerate(written.levels[1:], start=1):
            y, x = pixels.shape[-2:]
            assert level.shape[-2:] == (math.ceil(y / 2**index), math.ceil(x / 2**index))
            np.testing.assert_array_equal(group[str(index)][...], downsample_2x(group[str(index - 1)][...]))
        last = written.levels[-1]
        assert last.shape[-2] <= last.chunks[-2] and last.shape[-1] <= last.chunks[-1]


@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 65535))
def test_downsampling_a_constant_image_keeps_the_constant(height: int, width: int, value: int) -> None:
    plane = np.full((height, width), value, dtype=np.uint16)
    assert (downsample_2x(plane) == value).all()


def test_downsampling_rounds_integer_means_half_up_and_keeps_odd_edges() -> None:
    plane = np.array([[0, 1, 10], [1, 0, 20], [4, 4, 30]], dtype=np.uint8)  # top-left mean is 0.5
    np.testing.assert_array_equal(downsample_2x(plane), [[1, 15], [4, 30]])


def test_shards_are_byte_for_byte_what_zarr_python_writes(tmp_path: Path) -> None:
    """Our shard assembly (index layout, order, crc32c, edge shards) against zarr-python's own writer."""
    pixels = np.random.default_rng(5).integers(0, 4000, size=(3, 70, 90), dtype=np.uint16)
    options = WriteOptions(chunk_bytes=512, shard_chunks=2)
    written = write_image(ArraySource(pixels, "zyx"), ImagePrefix(LocalStore(tmp_path), "ours"), options)
    ours = zarr.open_array(str(tmp_path / "ours" / "0"), mode="r")
    assert ours.shards is not None and ours.chunks != ours.shards
    with zarr.config.set({"array.write_empty_chunks": True}):
        theirs = zarr.create_array(
            str(tmp_path / "theirs"),
            shape=ours.shape,
            chunks=ours.chunks,
            shards=ours.shards,
            dtype=ours.dtype,
            compressors=ours.compressors,
            fill_value=0,
        )
        theirs[...] = pixels
    shard_files = sorted(
        p.relative_to(tmp_path / "ours" / "0") for p in (tmp_path / "ours" / "0" / "c").rglob("*")
    )
    shard_files = [f for f in shard_files if (tmp_path / "ours" / "0" / f).is_file()]
    assert len(shard_files) == len(written.chunks and [k for k in written.chunks if k.startswith("0/")])
    for relative in shard_files:
        assert (tmp_path / "ours" / "0" / relative).read_bytes() == (
            tmp_path / "theirs" / relative
        ).read_bytes()


@given(images(), st.integers(1, 5))
def test_downsampling_in_column_blocks_gives_the_same_level(
    image: tuple[np.ndarray, str], columns: int
) -> None:
    pixels, _ = image
    np.testing.assert_array_equal(
        downsample_2x(pixels, columns=columns), downsample_2x(pixels, columns=1 << 30)
    )


@settings(max_examples=25, deadline=None)
@given(images(), st.sampled_from([0, 1, 2]), st.integers(0, 3))
def test_row_bands_and_plane_groups_written_apart_equal_one_write(
    image: tuple[np.ndarray, str], shard_chunks: int, depth: int
) -> None:
    """What cluster workers do with a large image, done here part by part: the same objects, byte for byte."""
    pixels, axes = image
    source = ArraySource(pixels, axes)
    options = WriteOptions(chunk_bytes=64, shard_chunks=shard_chunks)
    with tempfile.TemporaryDirectory() as folder:
        store = LocalStore(folder)
        whole = write_image(source, ImagePrefix(store, "whole"), options)
        target = ImagePrefix(store, "parts")
        plan = plan_image(source.metadata, options)
        create_image(plan, target)
        depth = min(depth, plan.band_depth())
        parts = [
            write_planes(
                plan, source, target, Part(groups=range(g, g + 1), rows=band, levels=range(depth + 1))
            )
            for g in range(len(plan.plane_groups))
            for band in plan.row_bands(depth)
        ]
        parts.append(complete_pyramid(plan, target, depth))
        assembled = finish_image(plan, target, parts)
        assert assembled.chunks == whole.chunks
        assert assembled.channels == whole.channels
