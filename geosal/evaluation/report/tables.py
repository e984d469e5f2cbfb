"""The CSV and Markdown reports of each protocol, and the sections they give the README.

Accuracies are printed in percent like the paper's tables; the scores (Table 2
sums, Eqs. 8 and 9) as fractions like the paper's. Each ``write_*`` writes
``<protocol>.csv`` (one row per cell) and ``<protocol>.md`` into the results
folder and returns the Markdown summary the README shows.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geosal.evaluation.report.summary import LAYERS, DeletionSummary, KarRoarSummary, LayerSummary, RoadSummary

SCORE_HEAD = ["Method", "KAR", "ROAR", "SUM", "D vs random", "I vs random", "ms / image", "time x SMOE"]


# --- formatting -------------------------------------------------------------------------------------


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction in percent (``0.1234`` -> ``"12.34"``); ``"—"`` for None."""
    return "—" if value is None else f"{100 * value:.{digits}f}"


def number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, never ``-0.00``; ``"—"`` for None or not finite."""
    if value is None or not np.isfinite(value):
        return "—"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def ratio(value: float | None, reference: float | None) -> str:
    """``value / reference`` as ``"2.5x"`` (``"25x"`` from 10 on); ``"—"`` when either is missing or 0."""
    if not value or not reference:
        return "—"
    r = value / reference
    return f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A Markdown table; ``align``: one of ``l``, ``r``, ``c`` per column (default: first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict], columns: Sequence[str]) -> None:
    """``rows`` as CSV with ``columns`` (missing values empty, other keys left out)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})


def _produced_by(run: dict) -> list[str]:
    return ["Produced by:", "", f"    {run['command']}", ""] if run.get("command") else []


def _model_accuracy(seen: dict) -> str:
    return ", ".join(f"{percent(v)} % at {k} px" for k, v in seen.items())


# --- per protocol ------------------------------------------------------------------------------------


def write_kar_roar(results: Path, cells: list[dict], run: dict, summary: KarRoarSummary, timing: dict) -> str:
    """``kar_roar.csv`` and ``kar_roar.md`` (Table 5 layout, then Table 2's scores and the time per image)."""
    fractions, methods, labels = summary.fractions, summary.methods, summary.labels
    write_csv(results / "kar_roar.csv", sorted(cells, key=lambda r: (r["method"], r["mode"], r["fraction"])),
              ["method", "label", "mode", "fraction", "accuracy", "best_accuracy", "seconds", "seconds_per_epoch",
               "shared_with", "train_images", "val_images", "image_size"])
    size = run.get("saliency_size")
    smoe_time = timing.get(("smoe_prior", size), {}).get("seconds_per_image")
    head = ["Method"] + [f"KAR {100 * f:g}%" for f in fractions] + [f"ROAR {100 * f:g}%" for f in fractions]
    wide = [[labels[m]] + [percent(summary.kar[m].get(f)) for f in fractions] + [percent(summary.roar[m].get(f)) for f in fractions]
            for m in methods]
    score_rows = []
    for m in sorted(summary.scores, key=lambda m: -summary.scores[m]["sum"]):
        s = summary.scores[m]
        seconds = timing.get((m, size), {}).get("seconds_per_image")
        score_rows.append([labels[m], number(s["kar"]), number(s["roar"]), number(s["sum"]), number(s["difference"]),
                           number(s["information"]), number(1000 * seconds, 1) if seconds else "—", ratio(seconds, smoe_time)])
    incomplete = [m for m in methods if m not in summary.scores]
    seen = run.get("explained_model_val_accuracy")
    text = [f"# KAR / ROAR with retraining ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        "Accuracy (%) on the masked validation images of a ResNet-18 retrained from scratch on the masked training "
        "images, after the last epoch (like the paper's Table 5). KAR keeps the p% most salient pixels (higher is "
        "better); ROAR removes them (lower is better). Removed pixels are the dataset mean colour.",
        "",
    ]
    if summary.reference is not None:
        text += [f"Reference: retrained on UNMASKED images, same schedule: {percent(summary.reference)} %.", ""]
    if seen:
        text += ["The maps come from the explained model, trained at "
                 f"{run.get('model_size')} px; its validation accuracy on the images it computed the maps on: "
                 + _model_accuracy(seen) + ".", ""]
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
        markdown_table(SCORE_HEAD, score_rows),
        "",
    ]
    if incomplete:
        text += [f"Incomplete (cells still missing): {', '.join(incomplete)}.", ""]
    text += ["![accuracy against percentage](kar_roar.png)", ""]
    (results / "kar_roar.md").write_text("\n".join(text))
    section = [markdown_table(SCORE_HEAD, score_rows)]
    if incomplete:
        section.append(f"\nIncomplete (cells still missing): {', '.join(incomplete)}.")
    if summary.reference is not None:
        section.append(f"\nRetrained on unmasked images: {percent(summary.reference)} %.")
    if seen:
        section.append("Explained model's validation accuracy: " + _model_accuracy(seen) + ".")
    return "\n".join(section)


def write_layers(results: Path, cells: list[dict], run: dict, summary: LayerSummary) -> str:
    """``layers.csv`` and ``layers.md`` (Table 4 layout, then Table 1's scores)."""
    write_csv(results / "layers.csv", sorted(cells, key=lambda r: (r["method"], r["mode"])),
              ["method", "label", "mode", "fraction", "accuracy", "best_accuracy", "seconds", "train_images", "val_images", "image_size"])
    head = ["Statistic"] + [f"KAR L{k}" for k in LAYERS] + [f"ROAR L{k}" for k in LAYERS]
    wide = [[summary.label(prefix)] + [percent(summary.kar.get(f"{prefix}_L{k}")) for k in LAYERS]
            + [percent(summary.roar.get(f"{prefix}_L{k}")) for k in LAYERS] for prefix in summary.statistics]
    ranked = sorted(summary.scores, key=lambda p: -summary.scores[p]["difference"])
    table1 = [[summary.label(p), number(summary.scores[p]["difference"]), number(summary.scores[p]["information"])] for p in ranked]
    table1_head = ["Statistic", "Difference score", "Information score"]
    text = [f"# Per-layer KAR / ROAR ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        "Each single-scale map L1 (finest) .. L5 (coarsest) of each statistic is used as an INPUT-PIXEL mask "
        f"(KAR keeps the top {percent(summary.kar_fraction, 1)} %, ROAR removes the top {percent(summary.roar_fraction, 1)} %), "
        "and the network is retrained from scratch. The paper instead masks the activations at each layer and "
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
        markdown_table(table1_head, table1),
        "",
        "![score per layer](layers.png)",
        "",
    ]
    (results / "layers.md").write_text("\n".join(text))
    return markdown_table(table1_head, table1)


def write_road(results: Path, cells: list[dict], run: dict, summary: RoadSummary) -> str:
    """``road.csv`` and ``road.md`` (MoRF and LeRF curves, their means; best LeRF - MoRF first)."""
    write_csv(results / "road.csv", sorted(cells, key=lambda r: (r["method"], r["order"], r["fraction"])),
              ["method", "label", "order", "fraction", "accuracy", "images", "seconds"])

    def gap(method: str) -> float:
        value = summary.means[method][2]
        return value if value is not None else -1e9

    order = sorted(summary.labels, key=lambda m: -gap(m))
    fractions = summary.fractions
    head = (["Method"] + [f"MoRF {100 * f:g}%" for f in fractions] + [f"LeRF {100 * f:g}%" for f in fractions]
            + ["MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"])
    rows = [[summary.labels[m]] + [percent(v) for v in summary.curve(m, "morf")] + [percent(v) for v in summary.curve(m, "lerf")]
            + [percent(v) for v in summary.means[m]] for m in order]
    compact_head = ["Method", "MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"]
    compact = [[summary.labels[m]] + [percent(v) for v in summary.means[m]] for m in order]
    original = summary.original
    text = [f"# ROAD: remove and debias, no retraining ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        f"Accuracy (%) of the ORIGINAL model on {run.get('images', '?')} validation images at {run.get('size', '?')} px "
        "after removing p% of the pixels, most relevant first (MoRF) or least relevant first (LeRF); removed pixels "
        "are imputed by noisy linear interpolation of their neighbours (Rong et al. 2022)."
        + (f" Accuracy on the unmodified images: {percent(original)} %." if original is not None else ""),
        "",
        markdown_table(head, rows),
        "",
        "![ROAD curves](road.png)",
        "",
    ]
    (results / "road.md").write_text("\n".join(text))
    return markdown_table(compact_head, compact)


def write_deletion(results: Path, cells: list[dict], run: dict, summary: DeletionSummary) -> str:
    """``deletion.csv`` and ``deletion.md`` (areas under the curves; best insertion - deletion first)."""
    write_csv(results / "deletion.csv", sorted(cells, key=lambda r: (r["method"], r["kind"])),
              ["method", "label", "kind", "auc", "auc_std", "auc_of_mean_curve", "images", "steps", "seconds"])

    def gap(method: str) -> float:
        value = summary.gap(method)
        return value if value is not None else -1e9

    order = sorted(summary.labels, key=lambda m: -gap(m))
    rows = [[summary.labels[m], number(summary.area(m, "deletion"), 4), number(summary.area(m, "insertion"), 4),
             number(summary.gap(m), 4)] for m in order]
    head = ["Method", "Deletion AUC (lower better)", "Insertion AUC (higher better)", "Insertion - Deletion (higher better)"]
    config = run.get("config", {})
    text = [f"# Deletion / insertion (Petsiuk et al. 2018) ({len(cells)} cells)", "", *_produced_by(run)]
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
    return markdown_table(head, rows)


def write_timing(results: Path, timing: dict[tuple[str, int], dict]) -> str | None:
    """``timing.csv`` and ``timing.md`` (each method alone, relative to SMOE Scale + prior weights); None without timings."""
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
