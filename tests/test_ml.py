"""Training data as an AI researcher loads it: patches of a dataset version (images of several chunks, with
their masks) from a repository folder and from a server with a token, pixel for pixel what was ingested;
edges dropped or padded, patches without enough foreground left out, a restricted dataset only with a
token allowed to read it, and PyTorch DataLoaders with several workers giving every patch once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr
from torch.utils.data import DataLoader

from fairimage.ml import Patches
from fairimage.ml.torch import PatchDataset, PatchStream
from fairimage.model.errors import InvalidInputError, StorageError
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.model.labels import MadeBy
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.labels.labels import add_label
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer

ADMIN = operator("test")
SHAPE = (2, 300, 420)  # channels, y, x: 2 x 3 patches of 128, with edges left over
SIZE = 128


@pytest.fixture
def cells(tmp_path: Path) -> tuple[Repository, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Three two-channel images stored in chunks smaller than a patch (so a patch spans several), each
    with a mask whose foreground is the top-left 200 x 200."""
    repository = init_repository(load_settings(tmp_path / "repo", chunk_bytes=96 * 96 * 2))
    pixels, masks = {}, {}
    for n in range(3):
        data = samples.ramp(SHAPE, seed=n)
        path = samples.ome_tiff(tmp_path / f"cells-{n}.ome.tif", data, axes="CYX")
        (outcome,) = ingest_paths(repository, [path], study="Cells")
        image_id = outcome.images[0]
        mask = np.zeros(SHAPE[1:], np.uint16)
        mask[:200, :200] = n + 1
        tifffile.imwrite(tmp_path / f"mask-{n}.tif", mask)
        add_label(repository, ADMIN, image_id, tmp_path / f"mask-{n}.tif", "nuclei", MadeBy("person", "Ada"))
        pixels[image_id], masks[image_id] = data, mask
    create_dataset(repository, ADMIN, DatasetRequest("nuclei", ("Cells",), "67/33", label="nuclei", seed=2))
    yield repository, pixels, masks
    repository.close()


def _check(patches: Patches, pixels: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> None:
    for patch in patches:
        window = (slice(patch.y, patch.y + SIZE), slice(patch.x, patch.x + SIZE))
        expected = pixels[patch.image_id][(slice(None), *window)]
        assert patch.image.shape == (2, SIZE, SIZE) and patch.image.dtype == np.uint16
        assert np.array_equal(patch.image[:, : expected.shape[1], : expected.shape[2]], expected)
        assert (
            not patch.image[:, expected.shape[1] :, :].any()
            and not patch.image[:, :, expected.shape[2] :].any()
        )
        assert patch.mask is not None
        expected_mask = masks[patch.image_id][window]
        assert np.array_equal(patch.mask[: expected_mask.shape[0], : expected_mask.shape[1]], expected_mask)


def test_patches_from_the_repository_folder_are_the_ingested_pixels_and_masks(cells: tuple) -> None:
    repository, pixels, masks = cells
    every = Patches(repository.settings.repo, "nuclei", size=SIZE)
    assert (every.dataset, every.version, len(every)) == ("nuclei", 1, 3 * 2 * 3)  # edges dropped
    assert Counter(patch.split for patch in every) == {"train": 12, "test": 6}  # 2 images, 1 image
    _check(every, pixels, masks)
    train = Patches(repository.settings.repo, "nuclei", split="train", size=SIZE)
    assert len(train) == 12 and {patch.split for patch in train} == {"train"}

    padded = Patches(repository.settings.repo, "nuclei", size=SIZE, pad=True)
    assert len(padded) == 3 * 3 * 4  # 300 -> 3 rows, 420 -> 4 columns, the last ones zero-filled
    _check(padded, pixels, masks)
    strided = Patches(repository.settings.repo, "nuclei", size=SIZE, stride=64)
    assert len(strided) == 3 * 3 * 5 and strided[4].x == 256  # (300-128)//64+1, (420-128)//64+1
    _check(strided, pixels, masks)

    # mostly foreground: the mask covers the top-left 200 x 200, so only the patch at (0, 0) of each image
    # (the ones at 128 are 72/128 covered in one direction: 56%, 31% in all)
    dense = Patches(repository.settings.repo, "nuclei", size=SIZE, min_foreground=0.9)
    assert sorted((patch.y, patch.x) for patch in dense) == [(0, 0)] * 3
    some = Patches(repository.settings.repo, "nuclei", size=SIZE, min_foreground=0.25)
    assert sorted({(patch.y, patch.x) for patch in some}) == [(0, 0), (0, 128), (128, 0), (128, 128)]
    low = Patches(repository.settings.repo, "nuclei", size=64, level=1)
    assert len(low) == 3 * 2 * 3  # 150 x 210 at level 1
    first = low[0]
    group = zarr.open_group(store=repository.image_root(first.image_id).zarr_store(""), mode="r")
    level_1 = group[group.attrs["ome"]["multiscales"][0]["datasets"][1]["path"]]
    assert np.array_equal(first.image, level_1[:, first.y : first.y + 64, first.x : first.x + 64])

    with pytest.raises(InvalidInputError, match="split 'validation': dataset 'nuclei' has test, train"):
        Patches(repository.settings.repo, "nuclei", split="validation")
    with pytest.raises(InvalidInputError, match=r"level=9: image .* has levels 0 to"):
        Patches(repository.settings.repo, "nuclei", level=9)


def test_a_restricted_dataset_over_http_needs_an_allowed_token_and_feeds_pytorch_workers(
    cells: tuple,
) -> None:
    repository, pixels, masks = cells
    policies.set_policy(repository, ADMIN, "Cells", "restricted")
    accounts.add_user(repository, ADMIN, "ada", Role.VIEWER, "ada@example.org", None)
    accounts.add_user(repository, ADMIN, "eve", Role.VIEWER, "eve@example.org", None)
    policies.add_grant(repository, ADMIN, "Cells", "ada", None, "annotates nuclei")
    allowed = accounts.create_token(repository, ADMIN, "ada", Scope.READ, None, "training").secret
    other = accounts.create_token(repository, ADMIN, "eve", Scope.READ, None, "curious").secret
    with LiveServer(repository.settings) as server:
        with pytest.raises(InvalidInputError, match="no dataset 'nuclei' that this token may read"):
            Patches(server.url, "nuclei", token=other)
        with pytest.raises(InvalidInputError, match="no dataset 'nuclei'"):
            Patches(server.url, "nuclei")
        with pytest.raises(InvalidInputError, match="the server does not know this token"):
            Patches(server.url, "nuclei", token="fi_made-up")
        remote = Patches(server.url, "nuclei", size=SIZE, token=allowed)
        assert len(remote) == 18
        _check(remote, pixels, masks)

        stream = DataLoader(PatchStream(remote), batch_size=4, num_workers=2)
        seen = Counter()
        for batch in stream:
            assert batch["image"].dtype == torch.float32 and batch["image"].shape[1:] == (2, SIZE, SIZE)
            assert batch["mask"].dtype == torch.int64 and batch["mask"].shape[1:] == (SIZE, SIZE)
            seen.update(zip(batch["image_id"], batch["y"].tolist(), batch["x"].tolist(), strict=True))
        assert len(seen) == 18 and set(seen.values()) == {1}  # every patch once, over two workers

    with pytest.raises(StorageError, match=r"no answer .*; is the server running"):
        Patches(server.url, "nuclei", token=allowed)  # the server has stopped

    local = PatchDataset(Patches(repository.settings.repo, "nuclei", size=SIZE))
    shuffled = DataLoader(
        local, batch_size=5, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    total = 0
    for batch in shuffled:
        for image, image_id, y, x in zip(
            batch["image"], batch["image_id"], batch["y"], batch["x"], strict=True
        ):
            expected = pixels[image_id][:, y : y + SIZE, x : x + SIZE].astype(np.float32)
            assert np.array_equal(image.numpy(), expected)
            total += 1
    assert total == 18
