"""timm models: built by name, weights from a local checkpoint or timm's own cache.

Names are ``convnext_tiny`` (timm's default pretrained tag) or
``convnext_tiny.fb_in1k`` (a given tag). Builder options (``features_only``,
``out_indices``, ``drop_path_rate`` ...) pass through to ``timm.create_model``.
timm's weights are looked up where timm keeps them (the Hugging Face hub cache,
``$HF_HUB_CACHE``, then torch.hub's ``checkpoints`` folder); geosal tries one
plain download when they are not there and otherwise says which file to fetch.
"""

from __future__ import annotations

import difflib
import os
import urllib.error
from pathlib import Path

import torch
from torch import nn

from geosal.models.errors import ModelLoadError
from geosal.models.extras import require
from geosal.models.spec import ModelSpec
from geosal.models.weights_source import WeightsKind, WeightsSource

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _timm():
    return require("timm")


def check_name(architecture: str) -> None:
    """Raise :class:`ModelLoadError` for a name timm does not know, with close names."""
    timm = _timm()
    if not timm.is_model(architecture):
        close = difflib.get_close_matches(architecture, timm.list_models(), n=4)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ModelLoadError(f"unknown timm model {architecture!r}{hint}; timm.list_models() lists them")


def build(spec: ModelSpec) -> nn.Module:
    """A randomly initialised timm model for ``spec`` (``num_classes``, ``input_bands`` as ``in_chans``, options)."""
    check_name(spec.architecture)
    try:
        return _timm().create_model(spec.architecture, pretrained=False, num_classes=spec.num_classes,
                                    in_chans=spec.input_bands, **spec.builder_options)
    except TypeError as error:
        raise ModelLoadError(f"timm model {spec.architecture}: bad model option ({error})") from None


def resolve(name: str, overrides: dict) -> ModelSpec:
    """The spec of timm pretrained weights ``name`` (``arch`` or ``arch.tag``), not pinned yet."""
    architecture, _, tag = name.partition(".")
    check_name(architecture)
    config = _timm().models.get_pretrained_cfg(name if tag else architecture)
    if config is None or not (config.hf_hub_id or config.url):
        raise ModelLoadError(f"timm has no pretrained weights {name!r}; give a checkpoint with --architecture timm:{architecture}")
    full_name = f"{architecture}.{config.tag}" if config.tag else architecture
    base = ModelSpec(
        architecture=architecture,
        family="timm",
        weights=WeightsSource(WeightsKind.TIMM, full_name),
        num_classes=int(config.num_classes or 0),
        mean=tuple(config.mean),
        std=tuple(config.std),
        input_size=int(config.input_size[-1]),
    )
    return base.with_overrides(**overrides)


def weights_file(spec: ModelSpec) -> Path:
    """The cached file of the spec's timm weights (one download tried when absent).

    Raises:
        ModelLoadError: not cached and not downloadable, saying what to fetch and where to put it.
    """
    config = _timm().models.get_pretrained_cfg(spec.weights.name)
    repo = config.hf_hub_id
    hub = require("huggingface_hub")
    cache_dir = os.environ.get("HF_HUB_CACHE") or hub.constants.HF_HUB_CACHE
    if repo:
        for filename in WEIGHT_FILES:
            found = hub.try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
            if isinstance(found, str):
                return Path(found)
    fallback = Path(torch.hub.get_dir()) / "checkpoints"
    url = f"https://huggingface.co/{repo}/resolve/main/model.safetensors" if repo else config.url
    target = fallback / (f"{spec.weights.name}.safetensors" if repo else url.rsplit("/", 1)[-1])
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), progress=False)
        return target
    except (urllib.error.URLError, OSError) as error:
        raise ModelLoadError(
            f"timm weights {spec.weights.name} are not in timm's cache ({cache_dir}) and cannot be downloaded "
            f"({getattr(error, 'reason', error)}): fetch {url} and save it as {target}, or pass the file as the model "
            f"path with --architecture timm:{spec.architecture}"
        ) from None


def load_pretrained(spec: ModelSpec, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Build the spec's timm model and load ``state`` the way timm loads its pretrained weights:
    into the whole model before a ``features_only`` wrapper renames its modules, with timm's
    checkpoint filter, a new classifier for another ``num_classes`` and the first convolution
    adapted for another ``in_chans``."""
    config = spec.weights.name.partition(".")[2] or None if spec.weights.kind == "timm" else None
    try:
        return _timm().create_model(
            spec.architecture, pretrained=True, pretrained_cfg=config,
            pretrained_cfg_overlay={"state_dict": state}, num_classes=spec.num_classes,
            in_chans=spec.input_bands, **spec.builder_options,
        )
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"{source} does not fit timm {spec.architecture}: {first}") from None
