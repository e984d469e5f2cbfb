"""The saliency methods of ``geosal evaluate`` by name, without importing torch.

Each entry says what a method is (its label in the tables, its family, the
forward pass it shares) and how :mod:`geosal.evaluation.methods` builds it
(``kind`` and ``arguments``); that module attaches the torch functions. The
settings (:mod:`geosal.evaluation.config`) and ``geosal evaluate
--list-methods`` use only this table, so the command line stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from geosal.evaluation.errors import EvaluationError
from geosal.saliency.catalog import STATISTIC_NAMES

SCALES = 5
"""Scale ends of the evaluated networks (ResNets: stem ReLU and layer1..layer4)."""

TABLE1_STATISTICS: dict[str, str] = {
    "smoe": "smoe_scale",
    "std": "std",
    "mean": "mean",
    "shannon_entropy": "shannon_entropy",
    "log_normal_mean": "log_normal_mean",
    "log_normal_entropy": "log_normal_entropy",
    "truncated_normal_mean": "truncated_normal_mean",
    "truncated_normal_std": "truncated_normal_std",
    "truncated_normal_entropy": "truncated_normal_entropy",
}
"""Method-name prefix -> statistic of :data:`geosal.saliency.catalog.STATISTIC_NAMES`: Table 1's rows."""

WEIGHT_LABELS = {"prior": "Prior Layer Weights", "linear": "Layer Weights [1,2,3,4,5]", "equal": "Layer Weights [1,1,1,1,1]"}

LEARNED = "smoe_learned"
"""SMOE Scale with layer weights learned from this network's own ``layers`` protocol
(:mod:`geosal.evaluation.layer_weights`), as the paper derived its prior weights."""


class MethodName(NamedTuple):
    """One method of the registry, without its function.

    Attributes:
        name: registry key (also used in file names).
        label: the name in tables (the paper's where it has one).
        family: ``baseline``, ``smoe``, ``statistic``, ``layer``, ``cam`` or ``gradient``.
        group: methods of one group share a forward pass within a batch ("" = none).
        kind: how the function is built: ``random``, ``random_layer``, ``combined``,
            ``learned`` (combined with learned weights), ``single_scale``, ``cam`` or ``gradient``.
        arguments: the builder's arguments, e.g. ``("smoe_scale", "prior")`` for ``combined``.
    """

    name: str
    label: str
    family: str
    group: str
    kind: str
    arguments: tuple = ()


def _catalog() -> dict[str, MethodName]:
    entries = [MethodName("random", "Random", "baseline", "", "random")]
    for weights in ("prior", "linear", "equal"):
        entries.append(MethodName(f"smoe_{weights}", f"SMOE Scale + {WEIGHT_LABELS[weights]}", "smoe", "smoe_scale",
                                  "combined", ("smoe_scale", weights)))
    entries.append(MethodName(LEARNED, "SMOE Scale + Learned Layer Weights", "smoe", "smoe_scale", "learned"))
    for prefix, statistic in TABLE1_STATISTICS.items():
        label = STATISTIC_NAMES[statistic].label
        if prefix != "smoe":
            entries.append(MethodName(f"{prefix}_equal", f"{label} + {WEIGHT_LABELS['equal']}", "statistic", statistic,
                                      "combined", (statistic, "equal")))
        for layer in range(SCALES):
            entries.append(MethodName(f"{prefix}_L{layer + 1}", f"{label} L{layer + 1}", "smoe" if prefix == "smoe" else "layer",
                                      statistic, "single_scale", (statistic, layer)))
    for layer in range(SCALES):
        entries.append(MethodName(f"random_L{layer + 1}", f"Random L{layer + 1}", "layer", "smoe_scale", "random_layer", (layer,)))
    entries += [
        MethodName("fastcam", "Fast-CAM (SMOE Scale x Grad-CAM++)", "cam", "gradcam++", "cam", ("gradcam++", True)),
        MethodName("gradcampp", "Grad-CAM++", "cam", "gradcam++", "cam", ("gradcam++", False)),
        MethodName("gradcam", "Grad-CAM", "cam", "gradcam", "cam", ("gradcam", False)),
    ]
    for kind, label in {"gradient": "Gradient", "guided_backprop": "Guided Backprop", "integrated_gradients": "Integrated Grad."}.items():
        entries.append(MethodName(kind, label, "gradient", "", "gradient", (kind, False)))
        entries.append(MethodName(f"{kind}_sg2", f"{label} -w- SmoothGrad Sq.", "gradient", "", "gradient", (kind, True)))
    return {entry.name: entry for entry in entries}


METHOD_NAMES: dict[str, MethodName] = _catalog()
"""Every method, by name, in registry order."""

MAIN_METHODS: tuple[str, ...] = tuple(
    name for name, entry in METHOD_NAMES.items() if entry.family != "layer" and entry.kind != "learned")
"""The methods of the method comparison (everything but the non-SMOE single-scale
maps and the per-scale random maps, which only the ``layers`` protocol uses, and
the learned weighting, which needs the ``layers`` protocol's results: name it to add it)."""

KAR_ROAR_DEFAULT: tuple[str, ...] = (
    "random", "smoe_equal", "guided_backprop_sg2", "smoe_prior", "gradient_sg2", "fastcam", "gradcampp", LEARNED,
)
"""The default method set of the retraining protocol: the methods that decide
whether SMOE Scale is as faithful as the gradient methods, plus SMOE Scale with
learned layer weights. Cells run in this order within each seed, so a run cut
short has the central comparison (SMOE Scale against the strongest gradient
method) first. Integrated Gradients with SmoothGrad-squared is left out
because its maps alone cost about 3 hours on a 2-core CPU (15 x 20 passes per
image); ``--methods`` adds it."""


def method_names(names: Sequence[str] | str) -> list[str]:
    """Registry names of ``names``, duplicates dropped, order kept: ``"all"`` is
    :data:`MAIN_METHODS`, ``"default"`` :data:`KAR_ROAR_DEFAULT`; a comma-separated string is accepted.

    Raises:
        EvaluationError: an unknown name (the message says how to list the known ones).
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    expanded: list[str] = []
    for name in names:
        expanded += list(MAIN_METHODS) if name == "all" else list(KAR_ROAR_DEFAULT) if name == "default" else [name]
    unknown = [n for n in expanded if n not in METHOD_NAMES]
    if unknown:
        raise EvaluationError(f"unknown method(s) {', '.join(unknown)}; 'geosal evaluate --list-methods' lists them "
                              f"(also 'all' = the {len(MAIN_METHODS)} compared methods, 'default' = the retraining set)")
    return list(dict.fromkeys(expanded))


def layer_methods(prefixes: Sequence[str] | None = None) -> list[str]:
    """Single-scale methods of the ``layers`` protocol: ``random_L1..L5`` and
    ``<prefix>_L1..L5`` for each Table 1 statistic (default: all of them).

    Raises:
        EvaluationError: a prefix that is not a key of :data:`TABLE1_STATISTICS`.
    """
    prefixes = list(TABLE1_STATISTICS) if prefixes is None else list(prefixes)
    unknown = [p for p in prefixes if p not in TABLE1_STATISTICS]
    if unknown:
        raise EvaluationError(f"unknown statistic(s) {unknown}; choose from {', '.join(TABLE1_STATISTICS)}")
    return [f"random_L{k}" for k in range(1, SCALES + 1)] + [f"{p}_L{k}" for p in prefixes for k in range(1, SCALES + 1)]
