"""Encoder-decoder networks: ``segmentation_models_pytorch`` models, and the decoder choice for any U-Net.

A spec's ``decoder`` says how an encoder-decoder network is explained:
``"ignore"`` runs the encoder only (for a ``segmentation_models_pytorch``
model, or any network with an ``encoder`` attribute that returns its features)
and its stages are the scales; ``"include"`` runs the whole network and the
decoder's stages are the scales (see :func:`geosal.saliency.describe_scales`).
Pretrained encoders are never downloaded (``encoder_weights=None``): weights
come from a checkpoint of the whole model.
"""

from __future__ import annotations

from torch import Tensor, nn

from geosal.models.errors import ModelLoadError
from geosal.models.extras import require
from geosal.models.spec import ModelSpec


class EncoderOnly(nn.Module):
    """The encoder of an encoder-decoder network, returning its deepest feature map.

    Module names stay those of the whole network (``encoder.layer1``...), so a
    layer list written for the whole network works here too.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> the deepest feature ``[B, C_k, H / s, W / s]``."""
        features = self.encoder(x)
        return features[-1] if isinstance(features, (list, tuple)) else features


def build(spec: ModelSpec) -> nn.Module:
    """A randomly initialised ``segmentation_models_pytorch`` model (the whole network).

    ``spec.architecture`` is an smp architecture (``Unet``, ``FPN``, ``DeepLabV3Plus``...),
    ``options`` its arguments (``encoder_name``, ``encoder_depth``...); ``input_bands``
    becomes ``in_channels`` and ``num_classes`` ``classes``.
    """
    smp = require("segmentation_models_pytorch")
    options = {"encoder_weights": None, **spec.builder_options}
    if options["encoder_weights"] is not None:
        raise ModelLoadError("segmentation encoders are not downloaded: leave encoder_weights unset and give a checkpoint")
    try:
        return smp.create_model(spec.architecture, in_channels=spec.input_bands, classes=max(spec.num_classes, 1), **options)
    except KeyError as error:
        raise ModelLoadError(f"unknown segmentation architecture or encoder: {error}") from None
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"segmentation model {spec.architecture}: {str(error).splitlines()[0]}") from None


def select_part(network: nn.Module, spec: ModelSpec) -> nn.Module:
    """The part of ``network`` that the spec's ``decoder`` choice runs: :class:`EncoderOnly`
    for ``"ignore"`` when the network has an ``encoder`` submodule, else the network itself."""
    encoder = getattr(network, "encoder", None)
    if spec.decoder == "ignore" and isinstance(encoder, nn.Module):
        return EncoderOnly(encoder)
    return network
