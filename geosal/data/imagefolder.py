"""Load a folder-per-class image collection (such as UC Merced Land Use) into memory.

The whole collection is decoded once into one ``uint8`` array: UC Merced is
1,680 images of 256 x 256 x 3, about 330 MB at full size, and training on two
CPU cores cannot afford to decode JPEGs every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class LabelledImages:
    """An in-memory labelled image collection.

    Attributes:
        images: ``uint8`` array ``[N, size, size, 3]`` (RGB, 0-255).
        labels: ``int64`` array ``[N]`` of indices into ``classes``.
        classes: class names, sorted alphabetically (the folder names).
        paths: source file of each image, relative to the collection root.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    paths: list[str]

    def subset(self, indices: np.ndarray) -> LabelledImages:
        """The images at ``indices`` (an integer array), in that order."""
        return LabelledImages(
            self.images[indices], self.labels[indices], self.classes, [self.paths[i] for i in indices]
        )

    def __len__(self) -> int:
        return len(self.labels)


def load_labelled_folder(root: str | Path, size: int = 256) -> LabelledImages:
    """Decode every image under ``root/<class>/`` and resize it to ``size`` x ``size``.

    Images that are not exactly ``size`` square (UC Merced has a few of 242 to
    257 pixels) are resized with bilinear antialiasing, which changes their
    ground sample distance by at most about 6%.

    Args:
        root: folder with one sub-folder per class.
        size: output side length in pixels.

    Returns:
        The collection, ordered by class name and then file name.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no class folder with images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(
        d.name for d in root.iterdir() if d.is_dir() and any(_image_files(d))
    )
    if not classes:
        raise FileNotFoundError(f"no class folders with images under {root}")
    files = [(label, path) for label, name in enumerate(classes) for path in _image_files(root / name)]
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, (_, path) in enumerate(files):
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR, reducing_gap=None)
            images[i] = np.asarray(image)
    labels = np.array([label for label, _ in files], dtype=np.int64)
    return LabelledImages(images, labels, classes, [str(p.relative_to(root)) for _, p in files])


def split_every_nth(collection: LabelledImages, n: int = 5, offset: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Fixed train/validation split: within each class, sorted by file name,
    every ``n``-th image (positions ``offset``, ``offset + n``, ...) is validation.

    With UC Merced's 80 images per class and the defaults this gives 64 training
    and 16 validation images per class (1,344 / 336). The split depends only on
    file names, so it is the same on every machine.

    Returns:
        ``(train_indices, val_indices)``, integer arrays into ``collection``.
    """
    train, val = [], []
    for label in range(len(collection.classes)):
        members = sorted(np.flatnonzero(collection.labels == label), key=lambda i: collection.paths[i])
        for position, index in enumerate(members):
            (val if position % n == offset else train).append(index)
    return np.array(train, dtype=np.int64), np.array(val, dtype=np.int64)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
