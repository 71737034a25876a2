"""The code of the allow-listed analyses (fairimage.model.federation.analyses names them): plain functions
of the images they may read, returning aggregates. They run in the sandbox's process, never the server's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from fairimage.catalog.tables import ImageRow, LabelRow
from fairimage.model.federation import pixels
from fairimage.model.federation.analyses import check_weights
from fairimage.ngff.reader import open_level
from fairimage.services.repository import Repository
from fairimage.storage import ImagePrefix, layout


class Item(NamedTuple):
    image_id: str
    split: str
    label_id: str | None


Code = Callable[[Repository, list[Item], dict[str, Any]], dict[str, Any]]
MAX_PLANE_PIXELS = 1 << 22  # a classifier learns from the first pyramid level with planes this small


def intensity_statistics(
    repository: Repository, items: list[Item], parameters: dict[str, Any]
) -> dict[str, Any]:
    """Per channel, over the images: the mean and spread of their mean intensities, their extremes."""
    means: dict[str, list[float]] = {}
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for image_id, *_ in items:
        for channel, plane in _channels(repository, image_id):
            means.setdefault(channel, []).append(float(plane.mean()))
            lows[channel] = min(lows.get(channel, np.inf), float(plane.min()))
            highs[channel] = max(highs.get(channel, -np.inf), float(plane.max()))
    rows = [
        {
            "channel": channel,
            "n": len(values),
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "min": lows[channel],
            "max": highs[channel],
        }
        for channel, values in sorted(means.items())
    ]
    return {"table": rows}


def image_counts(repository: Repository, items: list[Item], parameters: dict[str, Any]) -> dict[str, Any]:
    """How many images have each value of one field."""
    by = str(parameters.get("by", "dtype"))
    if by not in ("dtype", "dimensionality", "channels", "split"):
        raise ValueError(f"by={by!r}: give dtype, dimensionality, channels or split")
    counts: dict[str, int] = {}
    splits = {item.image_id: item.split for item in items}
    with repository.reading() as session:
        for image_id in splits:
            row = session.get(ImageRow, image_id)
            assert row is not None
            value = {
                "dtype": row.dtype,
                "dimensionality": "3D" if any(axis["name"] == "z" for axis in row.axes) else "2D",
                "channels": str(len(row.channels)),
                "split": splits[image_id],
            }[by]
            counts[value] = counts.get(value, 0) + 1
    return {"table": [{by: value, "n": n} for value, n in sorted(counts.items())]}


def _channels(repository: Repository, image_id: str) -> list[tuple[str, np.ndarray]]:
    """Each channel of an image's smallest pyramid level, as (its label, its pixels)."""
    with repository.reading() as session:
        row = session.get(ImageRow, image_id)
        assert row is not None
        levels, axes, channels = row.levels, [axis["name"] for axis in row.axes], row.channels
    path = levels[-1]["path"]
    pixels = _whole(repository.image_root(image_id), path, image_id)
    if "c" not in axes:
        return [(str(channels[0].get("label", "0")) if channels else "0", pixels)]
    stacked = np.moveaxis(pixels, axes.index("c"), 0)
    return [
        (str(channels[i].get("label", i)) if i < len(channels) else str(i), stacked[i])
        for i in range(len(stacked))
    ]


def train_pixel_classifier(
    repository: Repository, items: list[Item], parameters: dict[str, Any]
) -> dict[str, Any]:
    """This node's part of a federated run: a Flower client of the coordinator that, each round, trains the
    classifier it is sent on pixels of the train split and sends back only the weights (checked as any
    weights leaving the node are); at the end, its accuracy on the test split (or val) of the final model.
    The client answers only a coordinator that knows the run's session token."""
    import flwr  # here: the other analyses need not load it

    k = repository.settings.min_cell
    train = [item for item in items if item.split == "train"]
    held_out = [item for item in items if item.split == "test"] or [i for i in items if i.split == "val"]
    rng = np.random.default_rng(int(parameters["seed"]))
    x_parts, y_parts = [], []
    for x, y in labelled_pixels(repository, train, int(parameters["channel"])):
        chosen = pixels.sample(int(parameters["pixels"]), len(y), rng)
        x_parts.append(x[chosen])
        y_parts.append(y[chosen])
    x_train = np.vstack(x_parts) if x_parts else np.zeros((0, len(pixels.FEATURES)), np.float32)
    y_train = np.concatenate(y_parts) if y_parts else np.zeros(0, np.float32)
    session = str(parameters["session"])
    evaluated: dict[str, Any] = {}

    class Client(flwr.client.NumPyClient):  # type: ignore[misc]
        def fit(self, parameters_: list[np.ndarray], config: dict[str, Any]) -> Any:
            _check_session(config, session)
            weights = pixels.train(
                parameters_[0],
                x_train,
                y_train,
                int(parameters["epochs"]),
                float(parameters["learning_rate"]),
            )
            leaving = check_weights(weights.tolist(), len(train), k)  # OutputError: nothing leaves
            return [np.asarray(leaving)], len(y_train), {"session": session}

        def evaluate(self, parameters_: list[np.ndarray], config: dict[str, Any]) -> Any:
            _check_session(config, session)
            if len(held_out) < k:  # a score of fewer than k images does not leave
                evaluated.clear()
                return 0.0, 0, {"session": session}
            total = pixels.Score(0, 0, 0.0)
            for x, y in labelled_pixels(repository, held_out, int(parameters["channel"])):
                total = total + pixels.score(parameters_[0], x, y)
            evaluated.update(weights=parameters_[0].tolist(), score=total)
            return total.loss, total.pixels, {"session": session, "accuracy": total.accuracy}

    flwr.client.start_client(
        server_address=str(parameters["coordinator"]),
        client=Client().to_client(),
        max_retries=5,
        max_wait_time=10,
    )
    if not evaluated.get("weights"):
        return {"weights": [], "n": len(train), "table": []}
    score: pixels.Score = evaluated["score"]
    split = held_out[0].split
    row = {"split": split, "n": len(held_out), "pixels": score.pixels, "accuracy": score.accuracy}
    return {"weights": evaluated["weights"], "n": len(train), "table": [{**row, "loss": score.loss}]}


def _check_session(config: dict[str, Any], session: str) -> None:
    if config.get("session") != session:
        raise PermissionError("the coordinator does not know this run's session token; nothing is sent")


def labelled_pixels(
    repository: Repository, items: list[Item], channel: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each plane of each item's image (the channel asked for) as pixel features, with its label's
    foreground as the targets, at the first pyramid level whose planes are small enough."""
    for item in items:
        with repository.reading() as session:
            image = session.get(ImageRow, item.image_id)
            label = session.get(LabelRow, item.label_id) if item.label_id else None
            assert image is not None and label is not None
            axes, levels, label_levels = [axis["name"] for axis in image.axes], image.levels, label.levels
        index = _level(levels, axes)
        data = _whole(repository.image_root(item.image_id), levels[index]["path"], item.image_id)
        wanted = levels[index]["shape"][-2:]
        matching = [level for level in label_levels if level["shape"][-2:] == wanted]
        if not matching:
            raise ValueError(f"image {item.image_id}: its label has no level of the image's {wanted} pixels")
        labels = ImagePrefix(repository.store, layout.label_prefix(label.id))
        mask = _whole(labels, matching[0]["path"], f"the label of {item.image_id}")
        if "c" in axes:
            if channel >= data.shape[axes.index("c")]:
                raise ValueError(
                    f"channel={channel}: image {item.image_id} has {data.shape[axes.index('c')]} channels"
                )
            data = np.take(data, channel, axis=axes.index("c"))
        planes = data.reshape(-1, *data.shape[-2:])
        masks = mask.reshape(-1, *mask.shape[-2:])
        if masks.shape[-2:] != planes.shape[-2:] or len(masks) != len(planes):
            raise ValueError(
                f"image {item.image_id}: its label does not have the image's shape at this level"
            )
        for plane, plane_mask in zip(planes, masks, strict=True):
            yield pixels.features(plane), pixels.targets(plane_mask)


def _whole(root: ImagePrefix, path: str, what: str) -> np.ndarray:
    """Every pixel of the pyramid level at ``path`` of an image's (or a label's) OME-Zarr group."""
    return np.asarray(open_level(root.zarr_store(path, read_only=True), what)[...])


def _level(levels: list[dict[str, Any]], axes: list[str]) -> int:
    """The first level whose planes have at most MAX_PLANE_PIXELS pixels (or the smallest)."""
    for index, level in enumerate(levels):
        shape = dict(zip(axes, level["shape"], strict=True))
        if shape["y"] * shape["x"] <= MAX_PLANE_PIXELS:
            return index
    return len(levels) - 1


CODE: dict[str, Code] = {
    "intensity_statistics": intensity_statistics,
    "image_counts": image_counts,
    "train_pixel_classifier": train_pixel_classifier,
}
