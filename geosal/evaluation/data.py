"""The UC Merced images of the evaluation: the fixed train / validation split,
optionally a deterministic subset of it, decoded at any size.

The split is :func:`geosal.data.split_every_nth` (the one the shipped model was
trained with: within each class, sorted by file name, every fifth image is
validation). Subsets take the first ``k`` images of each class within each
split, by file name, so they are the same on every machine. Only the chosen
files are decoded, with the same PIL resize as
:func:`geosal.data.load_labelled_folder`.

Every image carries an ``id``: its index in the full collection (ordered by
class and file name). Seeded per-image randomness (random maps, tie-breaking)
is keyed by it, so an image gets the same random numbers whatever subset or
batch it is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from geosal.data import LabelledImages, split_every_nth
from geosal.data.imagefolder import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Split:
    """One side of the split, not yet decoded.

    Attributes:
        name: ``"train"`` or ``"val"``.
        files: absolute image paths.
        labels: ``int64`` class indices.
        ids: ``int64`` indices into the full collection.
        classes: class names (folder names, sorted).
    """

    name: str
    files: tuple[Path, ...]
    labels: np.ndarray
    ids: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, size: int) -> np.ndarray:
        """``uint8`` images ``[N, size, size, 3]`` (RGB), resized as ``load_labelled_folder`` does."""
        images = np.empty((len(self.files), size, size, 3), dtype=np.uint8)
        for i, path in enumerate(self.files):
            images[i] = decode_image(path, size)
        return images

    def head(self, per_class: int | None) -> Split:
        """The first ``per_class`` images of each class (all when ``None``)."""
        if per_class is None:
            return self
        keep = [i for i in range(len(self)) if np.sum(self.labels[: i + 1] == self.labels[i]) <= per_class]
        return Split(self.name, tuple(self.files[i] for i in keep), self.labels[keep], self.ids[keep], self.classes)


def decode_image(path: Path, size: int) -> np.ndarray:
    """One RGB image as ``uint8`` ``[size, size, 3]`` (bilinear with antialiasing)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR, reducing_gap=None)
        return np.asarray(image)


def list_collection(root: str | Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files, labels and class names of a folder-per-class collection, ordered
    as :func:`geosal.data.load_labelled_folder` orders them."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    def images_in(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and images_in(d))
    if not classes:
        raise FileNotFoundError(f"no class folders with images under {root}")
    files, labels = [], []
    for label, name in enumerate(classes):
        for path in images_in(root / name):
            files.append(path)
            labels.append(label)
    return files, np.asarray(labels, dtype=np.int64), classes


def load_splits(
    root: str | Path, train_per_class: int | None = None, val_per_class: int | None = None
) -> tuple[Split, Split]:
    """The train and validation splits of the collection at ``root``, optionally
    cut to the first ``*_per_class`` images of each class."""
    files, labels, classes = list_collection(root)
    root = Path(root)
    # split_every_nth needs only labels, classes and paths: no pixels are decoded here.
    index = LabelledImages(np.empty((len(files), 0, 0, 3), np.uint8), labels, classes, [str(p.relative_to(root)) for p in files])
    train_idx, val_idx = split_every_nth(index)
    splits = []
    for name, indices, per_class in (("train", train_idx, train_per_class), ("val", val_idx, val_per_class)):
        split = Split(name, tuple(files[i] for i in indices), labels[indices], indices.astype(np.int64), tuple(classes))
        splits.append(split.head(per_class))
    return splits[0], splits[1]
