"""Runnable workflows built on the geosal package (``python -m workflows.<name>``)."""
