"""The figures of each protocol (matplotlib, Agg backend), from its summary.

Line styles: the random baselines dashed black, SMOE-based methods thick, up to
45 others distinguishable by colour and dash; the legend right of the last axis.
Intervals: 95 % bootstrap intervals as error bars (the curves of different
methods dodged sideways a little so that their bars do not hide each other),
the references as a grey band; a method whose interval covers the images only
(one retraining seed) says so in the legend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geosal.evaluation.report.summary import LAYERS, DeletionSummary, KarRoarSummary, LayerSummary, RoadSummary
from geosal.evaluation.report.tables import IMAGE_ONLY, interval
from geosal.evaluation.uncertainty import Estimate

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


def _dodge(index: int, count: int, width: float = 3.0) -> float:
    """Sideways shift (x units) of the ``index``-th of ``count`` curves: spread over ``width``."""
    return 0.0 if count < 2 else width * (index / (count - 1) - 0.5)


def _error_bars(axis, xs: list[float], estimates: list[Estimate], scale: float, color: str, horizontal: bool = False) -> None:
    """Error bars of the estimates that have an interval, at ``xs`` (values times ``scale``)."""
    points = [(x, e) for x, e in zip(xs, estimates) if e is not None and e.has_interval]
    if not points:
        return
    positions = [x for x, _ in points]
    values = [scale * e.value for _, e in points]
    errors = [[scale * (e.value - e.low) for _, e in points], [scale * (e.high - e.value) for _, e in points]]
    if horizontal:
        axis.errorbar(values, positions, xerr=errors, fmt="none", ecolor=color, elinewidth=0.9, capsize=2, alpha=0.8)
    else:
        axis.errorbar(positions, values, yerr=errors, fmt="none", ecolor=color, elinewidth=0.8, capsize=2, alpha=0.7)


def _reference_band(axis, estimate: Estimate | None, label: str) -> None:
    """A dotted grey line at the reference accuracy (percent), and its interval as a grey band."""
    if estimate is None or estimate.value is None:
        return
    axis.axhline(100 * estimate.value, color="grey", linestyle=":", label=label)
    if estimate.has_interval:
        axis.axhspan(100 * estimate.low, 100 * estimate.high, color="grey", alpha=0.15, linewidth=0)


def _flag(estimates: list[Estimate], others_have_intervals: bool) -> str:
    """The legend's note on a method's intervals: image-only (one seed), or none while other methods have some."""
    if any(e.image_only for e in estimates):
        return f" ({IMAGE_ONLY})"
    if others_have_intervals and not any(e.has_interval for e in estimates):
        return " (no interval)"
    return ""


def _no_interval_note(figure, estimates: list[Estimate | None]) -> None:
    """Say so on the figure when none of its numbers has an interval."""
    if not any(e is not None and e.has_interval for e in estimates):
        figure.suptitle("no intervals: the cells have no per-image outcomes", fontsize=8, color="grey")


def _plot_percent_curves(axis, methods: list[str], curves: dict[str, dict[float, Estimate]], labels: dict[str, str]) -> None:
    """One line per method with a curve: fractions in [0, 1] on x and values in [0, 1] on y, both drawn as percent,
    with their intervals as error bars."""
    drawn = [m for m in methods if curves[m]]
    any_interval = any(e.has_interval for m in drawn for e in curves[m].values())
    for index, method in enumerate(methods):
        xs = sorted(curves[method])
        if not xs:
            continue
        estimates = [curves[method][x] for x in xs]
        shift = _dodge(drawn.index(method), len(drawn))
        positions = [100 * x + shift for x in xs]
        label = labels[method] + _flag(estimates, any_interval)
        style = _style(method, index)
        axis.plot(positions, [100 * e.value for e in estimates], marker="o", markersize=3, label=label, **style)
        _error_bars(axis, positions, estimates, 100, style["color"])


def plot_kar_roar(path: Path, summary: KarRoarSummary) -> None:
    """Accuracy against the percentage kept (KAR) and removed (ROAR), like the paper's Figure 5."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, table, title in ((axes[0], summary.kar, "KAR: % most salient pixels KEPT (higher is better)"),
                               (axes[1], summary.roar, "ROAR: % most salient pixels REMOVED (lower is better)")):
        _plot_percent_curves(axis, summary.methods, {method: table.get(method, {}) for method in summary.methods},
                             summary.labels)
        _reference_band(axis, summary.reference, "unmasked (retrained)")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of the image (methods shifted apart)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy after retraining (%)")
    _no_interval_note(figure, [e for table in (summary.kar, summary.roar) for c in table.values() for e in c.values()])
    _save_figure(plt, figure, axes[1], path)


def plot_layers(path: Path, summary: LayerSummary) -> None:
    """Per-layer difference score of each statistic, like the paper's Figure 4."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    any_interval = any(v is not None and v.has_interval for values in summary.per_layer.values() for v in values)
    for index, (prefix, values) in enumerate(summary.per_layer.items()):
        shift = _dodge(index, len(summary.per_layer), 0.3)
        points = [(k + 1 + shift, v) for k, v in enumerate(values) if v is not None]
        if points:
            style = _style(prefix, index)
            label = summary.label(prefix) + _flag([v for _, v in points], any_interval)
            axis.plot([x for x, _ in points], [v.value for _, v in points], marker="o", label=label, **style)
            _error_bars(axis, [x for x, _ in points], [v for _, v in points], 1, style["color"])
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(LAYERS, [f"L{k}" for k in LAYERS])
    axis.set_ylabel("(z_roar - roar) + (kar - z_kar)")
    axis.set_title("Per-layer difference score (like the paper's Figure 4)", fontsize=10)
    axis.grid(alpha=0.3)
    _no_interval_note(figure, [v for values in summary.per_layer.values() for v in values])
    _save_figure(plt, figure, axis, path)


def plot_road(path: Path, summary: RoadSummary) -> None:
    """Accuracy of the original model against the percentage removed and imputed, MoRF and LeRF."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, order, title in ((axes[0], "morf", "MoRF: most relevant removed first (lower is better)"),
                               (axes[1], "lerf", "LeRF: least relevant removed first (higher is better)")):
        _plot_percent_curves(axis, list(summary.labels),
                             {method: summary.accuracy[method].get(order, {}) for method in summary.labels}, summary.labels)
        _reference_band(axis, summary.original, "unmodified")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of pixels removed and imputed (methods shifted apart)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy of the original model (%)")
    _no_interval_note(figure, [e for m in summary.accuracy.values() for c in m.values() for e in c.values()])
    _save_figure(plt, figure, axes[1], path)


def plot_deletion(path: Path, summary: DeletionSummary) -> None:
    """The mean deletion and insertion curves of each method, their areas with intervals in the legend; below,
    insertion - deletion of each method with its interval."""
    plt = _pyplot()
    ranked = [m for m in summary.ranked if summary.gap(m) is not None]
    figure = plt.figure(figsize=(12, 5.2 + 0.22 * len(ranked)))
    grid = figure.add_gridspec(2, 2, height_ratios=[4.8, 0.4 + 0.22 * max(1, len(ranked))])
    axes = [figure.add_subplot(grid[0, 0])]
    axes.append(figure.add_subplot(grid[0, 1], sharey=axes[0]))
    for axis, kind in zip(axes, ("deletion", "insertion")):
        for index, method in enumerate(summary.labels):
            row = summary.cells[method].get(kind)
            if row:
                curve = row["curve"]
                axis.plot(np.linspace(0, 100, len(curve)), curve,
                          label=f"{summary.labels[method]} ({interval(summary.area(method, kind), 3)})", **_style(method, index))
        axis.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)", fontsize=10)
        axis.set_xlabel(f"percent of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("probability of the predicted class")
    gaps = figure.add_subplot(grid[1, :])
    methods = list(summary.labels)
    for position, method in enumerate(ranked):
        style = _style(method, methods.index(method))
        estimate = summary.gap(method)
        gaps.plot([estimate.value], [position], marker="o", color=style["color"], markersize=4)
        _error_bars(gaps, [position], [estimate], 1, style["color"], horizontal=True)
    gaps.set_yticks(range(len(ranked)), [summary.labels[m] for m in ranked], fontsize=7)
    gaps.yaxis.tick_right()  # the long labels beside the legend, not squeezing the curves
    gaps.invert_yaxis()
    gaps.set_xlabel("insertion AUC - deletion AUC (higher is better), 95 % interval")
    gaps.grid(alpha=0.3)
    _no_interval_note(figure, [summary.gap(m) for m in ranked])
    _save_figure(plt, figure, axes[1], path)
