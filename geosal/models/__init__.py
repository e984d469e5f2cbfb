"""Building and loading networks: torchvision, timm, TorchGeo, segmentation and factory models,
safe checkpoints, weights pinned by their SHA-256, the shipped model."""

from geosal.models.card import model_card, stac_mlm_fields
from geosal.models.checkpoints import read_checkpoint, save_checkpoint
from geosal.models.errors import ModelLoadError
from geosal.models.loader import (
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    LoadedModel,
    build_network_for,
    load_from_spec,
    load_model,
    resolve_spec,
    weight_bytes,
)
from geosal.models.networks import adapt_first_conv, build_network, classification_architectures
from geosal.models.spec import ModelSpec
from geosal.models.weights_source import WeightsKind, WeightsSource

__all__ = [
    "DEFAULT_MODEL", "SHIPPED_MODELS", "LoadedModel", "ModelLoadError", "ModelSpec", "WeightsKind", "WeightsSource",
    "adapt_first_conv", "build_network", "build_network_for", "classification_architectures", "load_from_spec",
    "load_model", "model_card", "read_checkpoint", "resolve_spec", "save_checkpoint", "stac_mlm_fields", "weight_bytes",
]
