"""The figures of each protocol (matplotlib, Agg backend), from its summary.

Line styles: the random baselines dashed black, SMOE-based methods thick, up to
45 others distinguishable by colour and dash; the legend right of the last axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geosal.evaluation.report.summary import LAYERS, DeletionSummary, KarRoarSummary, LayerSummary, RoadSummary

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"]
_DASHES = ["-", "-.", ":"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(method: str, index: int = 0) -> dict:
    """Line style: random dashed black, SMOE-based methods thick, up to 45 distinguishable others."""
    if method.startswith("random"):
        return {"color": "black", "linestyle": "--", "linewidth": 1.5}
    style = {"color": _PALETTE[index % len(_PALETTE)], "linestyle": _DASHES[(index // len(_PALETTE)) % len(_DASHES)]}
    if method.startswith("smoe") or method == "fastcam":
        return {**style, "linewidth": 2.4}
    return {**style, "linewidth": 1.3, "alpha": 0.9}


def _save_figure(plt, figure, legend_axis, path: Path) -> None:
    """Put the legend to the right of ``legend_axis``, write ``figure`` as a PNG at ``path`` and free it."""
    legend_axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)


def _plot_percent_curves(axis, methods: list[str], curves: dict[str, dict[float, float]], labels: dict[str, str]) -> None:
    """One line per method with a curve: fractions in [0, 1] on x and values in [0, 1] on y, both drawn as percent."""
    for index, method in enumerate(methods):
        xs = sorted(curves[method])
        if xs:
            axis.plot([100 * x for x in xs], [100 * curves[method][x] for x in xs], marker="o", markersize=3,
                      label=labels[method], **_style(method, index))


def plot_kar_roar(path: Path, summary: KarRoarSummary) -> None:
    """Accuracy against the percentage kept (KAR) and removed (ROAR), like the paper's Figure 5."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, table, title in ((axes[0], summary.kar, "KAR: % most salient pixels KEPT (higher is better)"),
                               (axes[1], summary.roar, "ROAR: % most salient pixels REMOVED (lower is better)")):
        _plot_percent_curves(axis, summary.methods, {method: table.get(method, {}) for method in summary.methods},
                             summary.labels)
        if summary.reference is not None:
            axis.axhline(100 * summary.reference, color="grey", linestyle=":", label="unmasked (retrained)")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of the image")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy after retraining (%)")
    _save_figure(plt, figure, axes[1], path)


def plot_layers(path: Path, summary: LayerSummary) -> None:
    """Per-layer difference score of each statistic, like the paper's Figure 4."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (prefix, values) in enumerate(summary.per_layer.items()):
        points = [(k + 1, v) for k, v in enumerate(values) if v is not None]
        if points:
            axis.plot(*zip(*points), marker="o", label=summary.label(prefix), **_style(prefix, index))
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(LAYERS, [f"L{k}" for k in LAYERS])
    axis.set_ylabel("(z_roar - roar) + (kar - z_kar)")
    axis.set_title("Per-layer difference score (like the paper's Figure 4)", fontsize=10)
    axis.grid(alpha=0.3)
    _save_figure(plt, figure, axis, path)


def plot_road(path: Path, summary: RoadSummary) -> None:
    """Accuracy of the original model against the percentage removed and imputed, MoRF and LeRF."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, order, title in ((axes[0], "morf", "MoRF: most relevant removed first (lower is better)"),
                               (axes[1], "lerf", "LeRF: least relevant removed first (higher is better)")):
        _plot_percent_curves(axis, list(summary.labels),
                             {method: summary.accuracy[method].get(order, {}) for method in summary.labels}, summary.labels)
        if summary.original is not None:
            axis.axhline(100 * summary.original, color="grey", linestyle=":", label="unmodified")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of pixels removed and imputed")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy of the original model (%)")
    _save_figure(plt, figure, axes[1], path)


def plot_deletion(path: Path, summary: DeletionSummary) -> None:
    """The mean deletion and insertion curves of each method, their areas in the legend."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion")):
        for index, method in enumerate(summary.labels):
            row = summary.cells[method].get(kind)
            if row:
                curve = row["curve"]
                axis.plot(np.linspace(0, 100, len(curve)), curve, label=f"{summary.labels[method]} ({row['auc']:.3f})",
                          **_style(method, index))
        axis.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)", fontsize=10)
        axis.set_xlabel(f"percent of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("probability of the predicted class")
    _save_figure(plt, figure, axes[1], path)
