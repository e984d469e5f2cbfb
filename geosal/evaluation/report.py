"""CSV, Markdown tables, plots and the README of a results folder.

Everything here is rebuilt from the finished cells on disk (``<protocol>/cells``),
so the reports of an interrupted run show what is finished, marked as such.
Accuracies are printed in percent like the paper's tables; the scores (Table 2
sums, Eqs. 8 and 9) use fractions like the paper's.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from geosal.evaluation.scores import difference_score, information_score, kar_roar_sums

PROTOCOL_FOLDERS = {"kar-roar": "kar_roar", "layers": "layers", "road": "road", "deletion": "deletion"}


# --- small helpers -----------------------------------------------------------------------------------


def load_cells(folder: Path) -> list[dict]:
    cells = folder / "cells"
    return [json.loads(p.read_text()) for p in sorted(cells.glob("*.json"))] if cells.is_dir() else []


def load_run(folder: Path) -> dict:
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}"


def number(value: float | None, digits: int = 2) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def ratio(value: float | None, reference: float | None) -> str:
    if not value or not reference:
        return "—"
    r = value / reference
    return f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], columns: Sequence[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"]
_DASHES = ["-", "-.", ":"]


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


def timing_table(results: Path) -> dict[tuple[str, int], dict]:
    path = results / "timing.json"
    if not path.exists():
        return {}
    return {(v["method"], int(v["size"])): v for v in json.loads(path.read_text()).values()}


# --- KAR / ROAR ---------------------------------------------------------------------------------------


def kar_roar_summary(cells: list[dict]) -> dict:
    """Per-method accuracies and scores from the retraining cells.

    Returns a dict with ``fractions``, ``methods`` (in first-seen order with
    random first), ``labels``, ``kar`` / ``roar`` (``{method: {fraction: acc}}``),
    ``reference`` (accuracy on unmasked images or ``None``) and ``scores``
    (``{method: {...}}`` for complete methods).
    """
    kar: dict[str, dict[float, float]] = defaultdict(dict)
    roar: dict[str, dict[float, float]] = defaultdict(dict)
    labels, reference = {}, None
    for row in cells:
        if row["mode"] == "none":
            reference = row["accuracy"]
            continue
        labels[row["method"]] = row["label"]
        (kar if row["mode"] == "kar" else roar)[row["method"]][round(row["fraction"], 6)] = row["accuracy"]
    fractions = sorted({f for table in (kar, roar) for values in table.values() for f in values})
    methods = sorted(labels, key=lambda m: (m != "random", list(labels).index(m)))
    scores = {}
    z_kar = [kar.get("random", {}).get(f) for f in fractions]
    z_roar = [roar.get("random", {}).get(f) for f in fractions]
    random_complete = all(v is not None for v in z_kar + z_roar)
    for method in methods:
        k = [kar[method].get(f) for f in fractions]
        r = [roar[method].get(f) for f in fractions]
        if any(v is None for v in k + r):
            continue
        k_sum, r_sum, total = kar_roar_sums(k, r)
        entry = {"kar": k_sum, "roar": r_sum, "sum": total, "difference": None, "information": None}
        if random_complete:
            entry["difference"] = difference_score(r, k, z_roar, z_kar)
            if min(k + r + z_kar + z_roar) > 0:
                entry["information"] = information_score(r, k, z_roar, z_kar)
        scores[method] = entry
    return {"fractions": fractions, "methods": methods, "labels": labels, "kar": kar, "roar": roar,
            "reference": reference, "scores": scores}


def write_kar_roar(results: Path, name: str = "kar-roar") -> str | None:
    folder = results / PROTOCOL_FOLDERS[name]
    cells = load_cells(folder)
    if not cells:
        return None
    run = load_run(folder)
    summary = kar_roar_summary(cells)
    fractions, methods, labels = summary["fractions"], summary["methods"], summary["labels"]
    write_csv(results / "kar_roar.csv", sorted(cells, key=lambda r: (r["method"], r["mode"], r["fraction"])),
              ["method", "label", "mode", "fraction", "accuracy", "best_accuracy", "seconds", "seconds_per_epoch",
               "shared_with", "train_images", "val_images", "image_size"])
    size = run.get("saliency_size")
    timing = timing_table(results)
    smoe_time = timing.get(("smoe_prior", size), {}).get("seconds_per_image")
    head = ["Method"] + [f"KAR {100 * f:g}%" for f in fractions] + [f"ROAR {100 * f:g}%" for f in fractions]
    wide = [[labels[m]] + [percent(summary["kar"][m].get(f)) for f in fractions] + [percent(summary["roar"][m].get(f)) for f in fractions]
            for m in methods]
    ranked = sorted(summary["scores"], key=lambda m: -summary["scores"][m]["sum"])
    score_rows = []
    for m in ranked:
        s = summary["scores"][m]
        seconds = timing.get((m, size), {}).get("seconds_per_image")
        relative = ratio(seconds, smoe_time)
        score_rows.append([labels[m], number(s["kar"]), number(s["roar"]), number(s["sum"]), number(s["difference"]),
                           number(s["information"]), number(1000 * seconds, 1) if seconds else "—", relative])
    incomplete = [m for m in methods if m not in summary["scores"]]
    text = [f"# KAR / ROAR with retraining ({len(cells)} cells)", ""]
    if run.get("command"):
        text += ["Produced by:", "", f"    {run['command']}", ""]
    text += [
        "Accuracy (%) on the masked validation images of a ResNet-18 retrained from scratch on the masked training "
        "images, after the last epoch (like the paper's Table 5). KAR keeps the p% most salient pixels (higher is "
        "better); ROAR removes them (lower is better). Removed pixels are the dataset mean colour.",
        "",
    ]
    if summary["reference"] is not None:
        text += [f"Reference: retrained on UNMASKED images, same schedule: {percent(summary['reference'])} %.", ""]
    seen = run.get("explained_model_val_accuracy")
    if seen:
        text += ["The maps come from the explained model, trained at "
                 f"{run.get('model_size')} px; its validation accuracy on the images it computed the maps on: "
                 + ", ".join(f"{percent(v)} % at {k} px" for k, v in seen.items()) + ".", ""]
    text += [markdown_table(head, wide), ""]
    text += [
        "## Scores (like the paper's Table 2)",
        "",
        "KAR = sum of the KAR accuracies, ROAR = minus the sum of the ROAR accuracies, SUM = KAR + ROAR (fractions, "
        "as the paper's Table 2 sums its Table 5). D and I apply Eq. 8 and Eq. 9 (natural log, see the scores module) "
        "over the percentages, with z = the random map's accuracies: 0 = no better than random, larger is better. "
        f"Time: wall ms per image of the method alone at {size or '?'} px, measured in the run; x = relative to SMOE Scale "
        "+ prior weights.",
        "",
        markdown_table(["Method", "KAR", "ROAR", "SUM", "D vs random", "I vs random", "ms / image", "time x SMOE"],
                       score_rows),
        "",
    ]
    if incomplete:
        text += [f"Incomplete (cells still missing): {', '.join(incomplete)}.", ""]
    text += ["![accuracy against percentage](kar_roar.png)", ""]
    (results / "kar_roar.md").write_text("\n".join(text))
    _plot_kar_roar(results / "kar_roar.png", summary)
    score_head = ["Method", "KAR", "ROAR", "SUM", "D vs random", "I vs random", "ms / image", "time x SMOE"]
    summary_lines = [markdown_table(score_head, score_rows)]
    if incomplete:
        summary_lines.append(f"\nIncomplete (cells still missing): {', '.join(incomplete)}.")
    if summary["reference"] is not None:
        summary_lines.append(f"\nRetrained on unmasked images: {percent(summary['reference'])} %.")
    if seen:
        summary_lines.append("Explained model's validation accuracy: "
                             + ", ".join(f"{percent(v)} % at {k} px" for k, v in seen.items()) + ".")
    return "\n".join(summary_lines)


def _plot_kar_roar(path: Path, summary: dict) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, mode, title in ((axes[0], "kar", "KAR: % most salient pixels KEPT (higher is better)"),
                              (axes[1], "roar", "ROAR: % most salient pixels REMOVED (lower is better)")):
        for index, method in enumerate(summary["methods"]):
            values = summary[mode][method]
            if not values:
                continue
            xs = sorted(values)
            axis.plot([100 * x for x in xs], [100 * values[x] for x in xs], marker="o", markersize=3,
                      label=summary["labels"][method], **_style(method, index))
        if summary["reference"] is not None:
            axis.axhline(100 * summary["reference"], color="grey", linestyle=":", label="unmasked (retrained)")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of the image")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy after retraining (%)")
    _save_figure(plt, figure, axes[1], path)


# --- layers (Table 1 / Table 4) -----------------------------------------------------------------------


def layer_summary(cells: list[dict]) -> dict:
    """``{"kar": {method: acc}, "roar": {...}, "statistics": [...], "scores": {stat: {...}}, "labels": {...}}``."""
    kar, roar, labels = {}, {}, {}
    for row in cells:
        (kar if row["mode"] == "kar" else roar)[row["method"]] = row["accuracy"]
        labels[row["method"]] = row["label"]
    prefixes = []
    for method in labels:
        prefix = method.rsplit("_L", 1)[0]
        if prefix not in prefixes:
            prefixes.append(prefix)
    prefixes.sort(key=lambda p: (p != "random", p != "smoe"))
    scores, per_layer = {}, {}
    layers = range(1, 6)
    z_kar = [kar.get(f"random_L{k}") for k in layers]
    z_roar = [roar.get(f"random_L{k}") for k in layers]
    for prefix in prefixes:
        if prefix == "random":
            continue
        k = [kar.get(f"{prefix}_L{layer}") for layer in layers]
        r = [roar.get(f"{prefix}_L{layer}") for layer in layers]
        per_layer[prefix] = [None if None in (zr, rr, kk, zk) else (zr - rr) + (kk - zk)
                             for zr, rr, kk, zk in zip(z_roar, r, k, z_kar)]
        if None in k + r + z_kar + z_roar:
            continue
        scores[prefix] = {"difference": difference_score(r, k, z_roar, z_kar),
                          "information": information_score(r, k, z_roar, z_kar) if min(k + r + z_kar + z_roar) > 0 else None}
    return {"kar": kar, "roar": roar, "labels": labels, "statistics": prefixes, "scores": scores, "per_layer": per_layer}


def write_layers(results: Path) -> str | None:
    folder = results / PROTOCOL_FOLDERS["layers"]
    cells = load_cells(folder)
    if not cells:
        return None
    run = load_run(folder)
    summary = layer_summary(cells)
    write_csv(results / "layers.csv", sorted(cells, key=lambda r: (r["method"], r["mode"])),
              ["method", "label", "mode", "fraction", "accuracy", "best_accuracy", "seconds", "train_images", "val_images", "image_size"])
    kar_fraction = next((r["fraction"] for r in cells if r["mode"] == "kar"), None)
    roar_fraction = next((r["fraction"] for r in cells if r["mode"] == "roar"), None)
    head = ["Statistic"] + [f"KAR L{k}" for k in range(1, 6)] + [f"ROAR L{k}" for k in range(1, 6)]
    wide = []
    for prefix in summary["statistics"]:
        label = summary["labels"].get(f"{prefix}_L1", prefix).rsplit(" L", 1)[0]
        wide.append([label] + [percent(summary["kar"].get(f"{prefix}_L{k}")) for k in range(1, 6)]
                    + [percent(summary["roar"].get(f"{prefix}_L{k}")) for k in range(1, 6)])
    ranked = sorted(summary["scores"], key=lambda p: -summary["scores"][p]["difference"])
    table1 = [[summary["labels"].get(f"{p}_L1", p).rsplit(" L", 1)[0], number(summary["scores"][p]["difference"]),
               number(summary["scores"][p]["information"])] for p in ranked]
    text = [f"# Per-layer KAR / ROAR ({len(cells)} cells)", ""]
    if run.get("command"):
        text += ["Produced by:", "", f"    {run['command']}", ""]
    text += [
        "Each single-scale map L1 (finest) .. L5 (coarsest) of each statistic is used as an INPUT-PIXEL mask "
        f"(KAR keeps the top {percent(kar_fraction, 1)} %, ROAR removes the top {percent(roar_fraction, 1)} %), and "
        "the network is retrained from scratch. The paper instead masks the activations at each layer and "
        "fine-tunes the layers after it (Section 3.1); this is the cheaper input-space variant. The random rows "
        "are random maps drawn at each layer's resolution and upsampled the same way.",
        "",
        markdown_table(head, wide),
        "",
        "## Scores (like the paper's Table 1)",
        "",
        "Difference score: Eq. 8; information score: Eq. 9 with the natural logarithm (what reproduces Table 1); "
        "z = the random maps at the same layer.",
        "",
        markdown_table(["Statistic", "Difference score", "Information score"], table1),
        "",
        "![score per layer](layers.png)",
        "",
    ]
    (results / "layers.md").write_text("\n".join(text))
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (prefix, values) in enumerate(summary["per_layer"].items()):
        points = [(k + 1, v) for k, v in enumerate(values) if v is not None]
        if points:
            axis.plot(*zip(*points), marker="o", label=summary["labels"].get(f"{prefix}_L1", prefix).rsplit(" L", 1)[0],
                      **_style(prefix, index))
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(1, 6), [f"L{k}" for k in range(1, 6)])
    axis.set_ylabel("(z_roar - roar) + (kar - z_kar)")
    axis.set_title("Per-layer difference score (like the paper's Figure 4)", fontsize=10)
    axis.grid(alpha=0.3)
    _save_figure(plt, figure, axis, results / "layers.png")
    return markdown_table(["Statistic", "Difference score", "Information score"], table1)


# --- ROAD ---------------------------------------------------------------------------------------------


def write_road(results: Path) -> str | None:
    folder = results / PROTOCOL_FOLDERS["road"]
    cells = load_cells(folder)
    if not cells:
        return None
    run = load_run(folder)
    original = next((r["accuracy"] for r in cells if r["order"] == "none"), None)
    table: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    labels = {}
    for row in cells:
        if row["order"] == "none":
            continue
        labels[row["method"]] = row["label"]
        table[row["method"]][row["order"]][round(row["fraction"], 6)] = row["accuracy"]
    fractions = sorted({f for m in table.values() for o in m.values() for f in o})
    write_csv(results / "road.csv", sorted(cells, key=lambda r: (r["method"], r["order"], r["fraction"])),
              ["method", "label", "order", "fraction", "accuracy", "images", "seconds"])
    rows, summary = [], {}
    for method in labels:
        morf = [table[method]["morf"].get(f) for f in fractions]
        lerf = [table[method]["lerf"].get(f) for f in fractions]
        complete = None not in morf + lerf
        m_mean = float(np.mean(morf)) if complete else None
        l_mean = float(np.mean(lerf)) if complete else None
        summary[method] = (m_mean, l_mean, None if not complete else l_mean - m_mean)
        rows.append((method, [labels[method]] + [percent(v) for v in morf] + [percent(v) for v in lerf]
                     + [percent(m_mean), percent(l_mean), percent(summary[method][2])]))
    rows.sort(key=lambda item: -(summary[item[0]][2] if summary[item[0]][2] is not None else -1e9))
    head = (["Method"] + [f"MoRF {100 * f:g}%" for f in fractions] + [f"LeRF {100 * f:g}%" for f in fractions]
            + ["MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"])
    compact_head = ["Method", "MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"]
    compact = [[labels[m]] + [percent(v) for v in summary[m]] for m, _ in rows]
    text = [f"# ROAD: remove and debias, no retraining ({len(cells)} cells)", ""]
    if run.get("command"):
        text += ["Produced by:", "", f"    {run['command']}", ""]
    text += [
        f"Accuracy (%) of the ORIGINAL model on {run.get('images', '?')} validation images at {run.get('size', '?')} px "
        "after removing p% of the pixels, most relevant first (MoRF) or least relevant first (LeRF); removed pixels "
        "are imputed by noisy linear interpolation of their neighbours (Rong et al. 2022)."
        + (f" Accuracy on the unmodified images: {percent(original)} %." if original is not None else ""),
        "",
        markdown_table(head, [r for _, r in rows]),
        "",
        "![ROAD curves](road.png)",
        "",
    ]
    (results / "road.md").write_text("\n".join(text))
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, order, title in ((axes[0], "morf", "MoRF: most relevant removed first (lower is better)"),
                               (axes[1], "lerf", "LeRF: least relevant removed first (higher is better)")):
        for index, method in enumerate(labels):
            values = table[method][order]
            xs = sorted(values)
            if xs:
                axis.plot([100 * x for x in xs], [100 * values[x] for x in xs], marker="o", markersize=3,
                          label=labels[method], **_style(method, index))
        if original is not None:
            axis.axhline(100 * original, color="grey", linestyle=":", label="unmodified")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("percent of pixels removed and imputed")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy of the original model (%)")
    _save_figure(plt, figure, axes[1], results / "road.png")
    return markdown_table(compact_head, compact)


# --- deletion / insertion -----------------------------------------------------------------------------


def write_deletion(results: Path) -> str | None:
    folder = results / PROTOCOL_FOLDERS["deletion"]
    cells = load_cells(folder)
    if not cells:
        return None
    run = load_run(folder)
    by_method: dict[str, dict[str, dict]] = defaultdict(dict)
    labels = {}
    for row in cells:
        by_method[row["method"]][row["kind"]] = row
        labels[row["method"]] = row["label"]
    write_csv(results / "deletion.csv", sorted(cells, key=lambda r: (r["method"], r["kind"])),
              ["method", "label", "kind", "auc", "auc_std", "auc_of_mean_curve", "images", "steps", "seconds"])

    def value(method: str, kind: str) -> float | None:
        return by_method[method].get(kind, {}).get("auc")

    def gap(method: str) -> float | None:
        d, i = value(method, "deletion"), value(method, "insertion")
        return None if d is None or i is None else i - d

    order = sorted(labels, key=lambda m: -(gap(m) if gap(m) is not None else -1e9))
    rows = [[labels[m], number(value(m, "deletion"), 4), number(value(m, "insertion"), 4), number(gap(m), 4)] for m in order]
    head = ["Method", "Deletion AUC (lower better)", "Insertion AUC (higher better)", "Insertion - Deletion (higher better)"]
    text = [f"# Deletion / insertion (Petsiuk et al. 2018) ({len(cells)} cells)", ""]
    if run.get("command"):
        text += ["Produced by:", "", f"    {run['command']}", ""]
    config = run.get("config", {})
    text += [
        f"Mean area under the curve of the softmax probability of the predicted class, over {run.get('images', '?')} "
        f"validation images at {run.get('size', '?')} px, as the most salient pixels are deleted (replaced by the "
        f"{config.get('deletion_substrate', 'mean')} substrate) or inserted into a blurred copy, in "
        f"{config.get('deletion_steps', '?')} steps. Original model, no retraining.",
        "",
        markdown_table(head, rows),
        "",
        "![deletion and insertion curves](deletion.png)",
        "",
    ]
    (results / "deletion.md").write_text("\n".join(text))
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion")):
        for index, method in enumerate(labels):
            row = by_method[method].get(kind)
            if row:
                curve = row["curve"]
                axis.plot(np.linspace(0, 100, len(curve)), curve, label=f"{labels[method]} ({row['auc']:.3f})",
                          **_style(method, index))
        axis.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area is better)", fontsize=10)
        axis.set_xlabel(f"percent of pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("probability of the predicted class")
    _save_figure(plt, figure, axes[1], results / "deletion.png")
    return markdown_table(head, rows)


# --- timing -------------------------------------------------------------------------------------------


def write_timing(results: Path) -> str | None:
    timing = timing_table(results)
    if not timing:
        return None
    rows = sorted(timing.values(), key=lambda r: (r["size"], r["seconds_per_image"]))
    write_csv(results / "timing.csv", rows, ["method", "label", "size", "seconds_per_image", "threads", "images"])
    table = []
    for row in rows:
        smoe = timing.get(("smoe_prior", row["size"]), {}).get("seconds_per_image")
        table.append([row["label"], row["size"], number(1000 * row["seconds_per_image"], 1),
                      ratio(row["seconds_per_image"], smoe), row["threads"]])
    text = markdown_table(["Method", "image px", "ms / image", "time x SMOE Scale (prior)", "threads"], table)
    (results / "timing.md").write_text(
        "# Wall time per image of each method\n\nEach method alone (no forward pass shared with another method), "
        "after one warm-up batch, on the first validation images, in the same run as the protocols. SMOE Scale's "
        "time includes the model's forward pass; so do all others.\n\n" + text + "\n")
    return text


# --- README -------------------------------------------------------------------------------------------


def write_all(results: Path, log: Callable[[str], None] = print) -> Path:
    """Rewrite every report of ``results`` from its cells, and ``README.md``."""
    results = Path(results)
    sections = {
        "kar-roar": write_kar_roar(results),
        "road": write_road(results),
        "deletion": write_deletion(results),
        "layers": write_layers(results),
        "timing": write_timing(results),
    }
    runs = {name: load_run(results / folder) for name, folder in PROTOCOL_FOLDERS.items()}
    text = [
        "# Faithfulness of saliency methods on UC Merced (geosal evaluate)",
        "",
        "Does SMOE Scale (Mundhenk et al., \"Efficient Saliency Maps for Explainable AI\") explain geosal's overhead-imagery "
        "model as faithfully as the popular gradient methods, and at what cost? These results are published whatever "
        "they show. Generated by `geosal evaluate` (geosal/evaluation/); every number below is recomputed from the "
        "per-cell JSON files in the protocol folders.",
        "",
        "## Commands",
        "",
    ]
    by_command: dict[str, list[str]] = defaultdict(list)
    for name, run in runs.items():
        if run.get("command"):
            by_command[run["command"]].append(f"{name} (finished {run.get('finished_utc', '?')} UTC, {run.get('threads', '?')} threads)")
    for command, protocols in by_command.items():
        text += [f"- `{command}`: " + "; ".join(protocols)]
    text += [""]
    titles = {
        "kar-roar": ("KAR / ROAR with retraining (Table 2 / Table 5, Figure 5)", "kar_roar.md"),
        "road": ("ROAD, original model (summary)", "road.md"),
        "deletion": ("Deletion / insertion AUC", "deletion.md"),
        "layers": ("Per-layer scores (Table 1)", "layers.md"),
        "timing": ("Cost per image", "timing.md"),
    }
    for name, (title, file) in titles.items():
        text += [f"## {title}", ""]
        text += [sections[name], "", f"Details: [{file}]({file})", ""] if sections[name] else ["Not run yet.", ""]
    reductions = next((run["reductions"] for run in runs.values() if run.get("reductions")), None)
    kar_reductions = runs["kar-roar"].get("reductions") or reductions
    if kar_reductions:
        text += ["## What is reduced relative to the paper", "",
                 markdown_table(["Aspect", "Paper", "Here"], kar_reductions, "lll"), ""]
    text += [
        "## How to read the scores",
        "",
        "- Accuracies are fractions in the score columns and percent in the accuracy tables.",
        "- Table 2's KAR / ROAR / SUM are plain sums of Table 5's accuracies (ROAR negated); e.g. the paper's SMOE Scale + "
        "prior weights: 3.61 - 2.31 = 1.30. Our percentages and network differ, so compare methods within this table, "
        "not with the paper's numbers.",
        "- D (Eq. 8) and I (Eq. 9) compare a method with the random map at the same percentage (or layer); 0 = random. "
        "Eq. 9 is evaluated with the natural logarithm: that is what reproduces the paper's Table 1 from its Table 4 "
        "(the printed log2 gives 1.63 instead of 1.13 for SMOE Scale on ImageNet).",
        "- Single retrainings on a small dataset are noisy: with about 336 validation images one image is 0.3 % "
        "accuracy, and the standard error of an accuracy near 50 % is about 2.7 %. Differences of a few percent "
        "between methods in one cell are not significant; the sums over five percentages are steadier.",
        "",
    ]
    (results / "README.md").write_text("\n".join(text))
    log(f"reports written to {results}/ (README.md, *.md, *.csv, *.png)")
    return results / "README.md"
