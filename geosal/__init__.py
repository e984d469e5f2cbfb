"""geosal: SMOE Scale saliency maps over huge georeferenced rasters."""

__version__ = "0.1.0"
