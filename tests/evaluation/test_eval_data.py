"""The evaluation's view of UC Merced: the fixed split, subsets, decoding."""

from __future__ import annotations

import numpy as np

from geosal.data import load_labelled_folder
from geosal.evaluation.data import load_splits
from tests.paths import UCMERCED


def test_full_split_matches_the_training_split():
    train, val = load_splits(UCMERCED)
    assert len(train) == 1344 and len(val) == 336 and len(train.classes) == 21
    assert np.bincount(val.labels).tolist() == [16] * 21
    assert not set(train.ids) & set(val.ids)
    files = sorted((UCMERCED / "agricultural").iterdir())
    assert list(val.files[:16]) == files[4::5]  # every fifth file by name is validation


def test_subsets_take_the_first_images_of_each_class():
    train, val = load_splits(UCMERCED, train_per_class=3, val_per_class=1)
    assert len(train) == 63 and len(val) == 21
    assert np.bincount(train.labels).tolist() == [3] * 21
    full_train, _ = load_splits(UCMERCED)
    assert train.ids[:3].tolist() == full_train.ids[:3].tolist()
    assert val.head(None) is val


def test_decoding_matches_load_labelled_folder(tmp_path):
    folder = tmp_path / "mini" / "beach"
    folder.mkdir(parents=True)
    sources = sorted((UCMERCED / "beach").iterdir())[:5]
    for source in sources:
        (folder / source.name).symlink_to(source)
    reference = load_labelled_folder(tmp_path / "mini", size=48)
    train, val = load_splits(tmp_path / "mini")
    assert len(train) == 4 and len(val) == 1  # position 4 is validation
    assert np.array_equal(train.decode(48), reference.images[:4])
    assert np.array_equal(val.decode(48), reference.images[4:])
