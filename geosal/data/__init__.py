"""Labelled image collections used for training and evaluation (no rasters)."""

from geosal.data.imagefolder import LabelledImages, load_labelled_folder, split_every_nth

__all__ = ["LabelledImages", "load_labelled_folder", "split_every_nth"]
