"""PyTorch datasets over ``Patches``: ``PatchDataset`` (map-style: shuffling, samplers) and
``PatchStream`` (iterable: each DataLoader worker reads whole images of its own, so a chunk is fetched
and decoded by one worker only). Items are dicts of tensors: ``image`` (channels, size, size) as float32,
``mask`` (size, size) as int64 where the dataset has labels, and the patch's place (``image_id``, ``t``,
``z``, ``y``, ``x``), which the default collate function batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fairimage.ml.patches import Patch, Patches
from fairimage.model.errors import InvalidInputError

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError:  # pragma: no cover - torch is an optional extra
    raise InvalidInputError(
        "fairimage.ml.torch needs PyTorch: pip install 'fairimage[torch]' (or torch itself)"
    ) from None

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def as_tensors(patch: Patch) -> dict[str, Any]:
    item: dict[str, Any] = {
        "image": torch.from_numpy(patch.image.astype("float32", copy=False)),
        "image_id": patch.image_id,
        "t": patch.t,
        "z": patch.z,
        "y": patch.y,
        "x": patch.x,
    }
    if patch.mask is not None:
        item["mask"] = torch.from_numpy(patch.mask.astype("int64", copy=False))
    return item


class PatchDataset(Dataset[dict[str, Any]]):
    """Map-style: ``dataset[i]`` is patch ``i``; works with any sampler and ``shuffle=True``."""

    def __init__(self, patches: Patches, transform: Transform | None = None) -> None:
        self.patches, self.transform = patches, transform

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = as_tensors(self.patches[index])
        return self.transform(item) if self.transform else item


class PatchStream(IterableDataset[dict[str, Any]]):
    """Iterable: in order, each DataLoader worker taking whole images (image k to worker k mod n)."""

    def __init__(self, patches: Patches, transform: Transform | None = None) -> None:
        self.patches, self.transform = patches, transform

    def __len__(self) -> int:
        return len(self.patches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        chosen = self.patches.shard(worker.id, worker.num_workers) if worker else iter(self.patches)
        for patch in chosen:
            item = as_tensors(patch)
            yield self.transform(item) if self.transform else item
