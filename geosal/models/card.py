"""Model cards: what a run used, as STAC Machine Learning Model (MLM) fields and as a small card.

:func:`stac_mlm_fields` gives the ``mlm:*`` properties of the STAC MLM
extension (v1.4) for a spec, for the ``item.json`` of each output;
:func:`model_card` adds the spec itself; :func:`write_model_card` writes both
as ``.json`` and ``.md`` next to a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from geosal.models.spec import ModelSpec

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"


def _tasks(spec: ModelSpec) -> list[str]:
    if spec.family == "segmentation" or spec.architecture == "unet":
        return ["semantic-segmentation"]
    return ["classification"] if spec.num_classes > 0 else ["similarity-search"]


def value_scaling(spec: ModelSpec) -> list[dict]:
    """Per-band z-score of the model input in the units of :attr:`ModelSpec.input_units`:
    ``(value - mean / pixel_scale) / (std / pixel_scale)``, one entry per input band."""
    bands = spec.input_bands
    means = spec.mean if len(spec.mean) == bands else spec.mean * bands
    stds = spec.std if len(spec.std) == bands else spec.std * bands
    return [{"type": "z-score", "mean": m / spec.pixel_scale, "stddev": s / spec.pixel_scale} for m, s in zip(means, stds, strict=True)]


def stac_mlm_fields(spec: ModelSpec, network: nn.Module | None = None) -> dict:
    """The STAC MLM extension properties describing ``spec`` (add :data:`MLM_SCHEMA` to ``stac_extensions``).

    Args:
        spec: the resolved model spec.
        network: the built network, to count its parameters (optional).

    Returns:
        A JSON-serialisable dict of ``mlm:*`` properties (``mlm:name``, ``mlm:architecture``,
        ``mlm:tasks``, ``mlm:framework``, ``mlm:input`` with band names and value scaling,
        ``mlm:output`` with classes, ``mlm:pretrained``...) plus ``geosal:*`` fields for
        what MLM has no field for (the weights' SHA-256, the input units, the decoder choice).
    """
    tasks = _tasks(spec)
    size = spec.input_size
    if tasks == ["semantic-segmentation"]:
        result = {"shape": [-1, max(spec.num_classes, 1), size, size], "dim_order": ["batch", "channel", "height", "width"],
                  "data_type": "float32"}
    else:
        result = {"shape": [-1, spec.num_classes], "dim_order": ["batch", "class"], "data_type": "float32"}
    output = {"name": "logits" if spec.num_classes else "features", "tasks": tasks, "result": result,
              "post_processing_function": None}
    if spec.classes:
        output["classification:classes"] = [{"value": i, "name": name} for i, name in enumerate(spec.classes)]
    fields = {
        "mlm:name": str(spec.weights) if not spec.weights.is_random else f"{spec.architecture} (random weights)",
        "mlm:architecture": f"{spec.family}:{spec.architecture}",
        "mlm:tasks": tasks,
        "mlm:framework": "pytorch",
        "mlm:framework_version": torch.__version__.split("+")[0],
        "mlm:pretrained": not spec.weights.is_random,
        "mlm:pretrained_source": None if spec.weights.is_random else str(spec.weights),
        "mlm:input": [{
            "name": "tiles",
            "bands": list(spec.band_names),
            "input": {"shape": [-1, spec.input_bands, size, size], "dim_order": ["batch", "channel", "height", "width"],
                      "data_type": "float32"},
            "value_scaling": value_scaling(spec),
            "resize_type": None,
            "pre_processing_function": None,
        }],
        "mlm:output": [output],
        "geosal:weights_sha256": spec.weights.sha256 or None,
        "geosal:input_units": spec.input_units,
        "geosal:decoder": spec.decoder,
        "geosal:gsd_m": spec.gsd_m,
    }
    if network is not None:
        fields["mlm:total_parameters"] = int(sum(p.numel() for p in network.parameters()))
    return fields


def model_card(spec: ModelSpec, network: nn.Module | None = None) -> dict:
    """A JSON model card: ``{"spec": spec.to_dict(), "stac_mlm": stac_mlm_fields(...)}``."""
    return {"spec": spec.to_dict(), "stac_mlm": stac_mlm_fields(spec, network)}


def model_card_markdown(spec: ModelSpec) -> str:
    """A short human-readable card: source, bands, normalisation, resolution, classes."""
    scaling = ", ".join(f"({v['mean']:.4g}, {v['stddev']:.4g})" for v in value_scaling(spec))
    lines = [
        f"# Model card: {spec.family} {spec.architecture}",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| weights | `{spec.weights}` |",
        f"| weights sha256 | `{spec.weights.sha256 or 'not pinned'}` |",
        f"| input bands | {spec.input_bands}: {', '.join(spec.band_names) or 'not declared'} |",
        f"| input units | {spec.input_units} |",
        f"| normalisation (mean, std) per band | {scaling} |",
        f"| ground sample distance | {f'{spec.gsd_m} m' if spec.gsd_m else 'not declared'} |",
        f"| classes | {spec.num_classes}{': ' + ', '.join(spec.classes[:20]) if spec.classes else ''} |",
        f"| decoder | {spec.decoder} |",
        "",
    ]
    return "\n".join(lines)


def write_model_card(spec: ModelSpec, checkpoint: str | Path) -> tuple[Path, Path]:
    """Write ``<checkpoint stem>.card.json`` and ``.card.md`` next to ``checkpoint``; returns both paths."""
    checkpoint = Path(checkpoint)
    json_path = checkpoint.with_name(f"{checkpoint.stem}.card.json")
    markdown_path = checkpoint.with_name(f"{checkpoint.stem}.card.md")
    json_path.write_text(json.dumps(model_card(spec), indent=1))
    markdown_path.write_text(model_card_markdown(spec))
    return json_path, markdown_path
