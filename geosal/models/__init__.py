"""Building and loading networks: torchvision names, safe checkpoints, the shipped model."""

from geosal.models.checkpoints import read_checkpoint, save_checkpoint
from geosal.models.errors import ModelLoadError
from geosal.models.loader import DEFAULT_MODEL, SHIPPED_MODELS, LoadedModel, load_from_spec, load_model, resolve_spec
from geosal.models.networks import adapt_first_conv, build_network, classification_architectures
from geosal.models.spec import ModelSpec

__all__ = [
    "DEFAULT_MODEL", "SHIPPED_MODELS", "LoadedModel", "ModelLoadError", "ModelSpec", "adapt_first_conv",
    "build_network", "classification_architectures", "load_from_spec", "load_model", "read_checkpoint",
    "resolve_spec", "save_checkpoint",
]
