"""Loading a dataset version for training: ``Patches`` iterates (or indexes) windows of its images, with
their labels, from a fairimage server or a repository folder; ``fairimage.ml.torch`` wraps them for PyTorch
(``pip install 'fairimage[torch]'``).

    from fairimage.ml import Patches
    train = Patches("http://127.0.0.1:8000", "nuclei", split="train", size=256, token=TOKEN)
    for patch in train:
        patch.image  # (channels, 256, 256), the stored dtype
        patch.mask   # (256, 256) label ids, or None
"""

from fairimage.ml.patches import Patch, Patches

__all__ = ["Patch", "Patches"]
