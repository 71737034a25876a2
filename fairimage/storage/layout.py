"""Where things live in a store. The only place that spells storage keys."""

from __future__ import annotations

IMAGES = "images"
MANIFESTS = "manifests"
STAGING = "staging"
ORIGINALS = "originals"
PLATES = "plates"
LABELS = "labels"
RENDERINGS = "renderings"
MODELS = "models"
MIRRORING = "mirroring"  # a mirror's downloads, kept across restarts until published


def image_prefix(image_id: str) -> str:
    return f"{IMAGES}/{image_id}.ome.zarr"


def label_prefix(label_id: str) -> str:
    """A label image (OME-NGFF labels/NAME of its image, served there; stored by its own id)."""
    return f"{LABELS}/{label_id}.ome.zarr"


def model_prefix(model_id: str) -> str:
    """A trained model's stored files: its bioimage.io package (package.zip, rdf.yaml) or its card."""
    return f"{MODELS}/{model_id}"


def model_file_key(model_id: str, name: str) -> str:
    return f"{model_prefix(model_id)}/{name}"


def staged_model_prefix(run_id: str, model_id: str) -> str:
    return f"{STAGING}/{run_id}/{model_id}"


def plate_prefix(plate_id: str) -> str:
    """A plate's own group documents (plate, rows, wells); its field images live at their image prefixes."""
    return f"{PLATES}/{plate_id}.ome.zarr"


def plate_files_key(plate_id: str) -> str:
    """The list of a plate's original files with the size and sha256 of each."""
    return f"{MANIFESTS}/{plate_id}.files.json"


def manifest_key(image_id: str) -> str:
    return f"{MANIFESTS}/{image_id}.json"


def mirroring_prefix(image_id: str) -> str:
    """Where a mirror of another node's image is downloaded to, chunk by checked chunk: outside staging, so
    that a mirror killed half-way goes on from what it has."""
    return f"{MIRRORING}/{image_id}.ome.zarr"


def staging_prefix(run_id: str) -> str:
    return f"{STAGING}/{run_id}"


def staged_image_prefix(run_id: str, image_id: str) -> str:
    return f"{STAGING}/{run_id}/{image_id}.ome.zarr"


def original_key(series_sha256: str, index: int) -> str:
    """A kept original, encrypted (Crypt4GH); named by its content and place, never by its file name,
    which may name the patient."""
    return f"{ORIGINALS}/{series_sha256}/{index:05d}.c4gh"


def staged_manifest_key(run_id: str, image_id: str) -> str:
    return f"{STAGING}/{run_id}/{image_id}.manifest.json"


def rendering_key(owner_id: str, name: str) -> str:
    """A picture rendered once and kept (a dense plate's overview): derived from stored pixels, which never
    change, so it may be removed at any time and is drawn again when asked for."""
    return f"{RENDERINGS}/{owner_id}/{name}"
