"""Optional model libraries, imported only when a model needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from geosal.models.errors import ModelLoadError

EXTRAS = {
    "timm": "timm",
    "torchgeo": "torchgeo",
    "segmentation_models_pytorch": "segmentation",
    "safetensors": "timm",
    "huggingface_hub": "timm",
}
"""Import name -> the ``geosal[...]`` extra that installs it."""


def require(module: str) -> ModuleType:
    """Import an optional library, or fail with the one ``pip install`` line that brings it.

    Args:
        module: an import name from :data:`EXTRAS` (``"timm"``, ``"torchgeo.models"``, ...).

    Raises:
        ModelLoadError: the library is not installed (or fails to import).
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRAS.get(top, top)
        missing = getattr(error, "name", None) or top
        raise ModelLoadError(
            f"{top} is needed for this model but {missing!r} cannot be imported: pip install 'geosal[{extra}]'"
        ) from None
