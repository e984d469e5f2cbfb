"""The CSV and Markdown reports of each protocol, and the sections they give the README.

Accuracies are printed in percent like the paper's tables; the scores (Table 2
sums, Eqs. 8 and 9) as fractions like the paper's. A number is followed by its
95 % bootstrap interval, ``0.64 [0.51, 0.77]`` (:mod:`geosal.evaluation.uncertainty`);
a number alone has none (its cells carry no per-image outcomes). Each ``write_*``
writes ``<protocol>.csv`` (one row per cell file, with the interval of that row
alone), ``<protocol>.md`` and, for the protocols that compare methods,
``<protocol>_pairs.csv`` (every pairwise comparison) into the results folder,
and returns the Markdown summary the README shows.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geosal.evaluation.catalog import LEARNED
from geosal.evaluation.report.summary import LAYERS, DeletionSummary, KarRoarSummary, LayerSummary, RoadSummary, load_run_settings
from geosal.evaluation.uncertainty import ALPHA, LEVEL, Comparison, Estimate

SCORE_HEAD = ["Method", "Seeds", "KAR", "ROAR", "SUM", "I vs random", "ms / image", "time x SMOE"]

IMAGE_ONLY = "1 seed: image-only interval"
"""The flag of a number whose interval covers the images only (one retraining seed)."""

PAIR_COLUMNS = ["statistic", "first", "second", "difference", "low", "high", "seeds", "p", "p_holm", "significant"]


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


def interval(estimate: Estimate | None, digits: int = 2, scale: float = 1.0) -> str:
    """``"0.64 [0.51, 0.77]"``: the estimate and its interval (times ``scale``); the value alone
    without an interval; ``"—"`` for None."""
    if estimate is None or estimate.value is None:
        return "—"
    text = number(scale * estimate.value, digits)
    if estimate.has_interval:
        text += f" [{number(scale * estimate.low, digits)}, {number(scale * estimate.high, digits)}]"
    return text


def percent_interval(estimate: Estimate | None, digits: int = 2) -> str:
    """:func:`interval` of a fraction, in percent (``"64.00 [51.00, 77.00]"``)."""
    return interval(estimate, digits, 100.0)


def p_value(p: float | None) -> str:
    """A p-value with three decimals (``"0.001"``), those that would print as 0.000 in scientific notation; ``"—"`` for None."""
    if p is None:
        return "—"
    return f"{p:.3f}" if p >= 0.0005 else f"{p:.1e}"


def seeds_text(count: int, has_interval: bool = True) -> str:
    """The seeds column: ``"3"``; :data:`IMAGE_ONLY` for one seed; ``"1 seed, no interval"`` without per-image outcomes."""
    if count <= 0:
        return "—"
    if not has_interval:
        return f"{count} seed{'s' if count > 1 else ''}, no interval"
    return IMAGE_ONLY if count == 1 else str(count)


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


# --- per protocol------------------------------------------------------------------------------------


NO_INTERVAL = ("A number without an interval comes from cells written without per-image outcomes: a point "
               "estimate only.")


def _uncertainty_note(replicates: int, images: int | None, seeds: bool) -> str:
    """What the intervals are, in one paragraph."""
    n = f"{images} " if images else ""
    if seeds:
        text = (f"Intervals: {100 * LEVEL:g} % percentile intervals of a paired two-level bootstrap ({replicates} replicates, "
                f"seeded): each replicate redraws the retraining seeds with replacement (all cells of one seed together) and "
                f"the {n}validation images with replacement, the same draws for every method and cell, and recomputes every "
                f"number. \"{IMAGE_ONLY}\": with a single retraining seed the interval covers the choice of images only, "
                "not the retraining noise, so it understates the uncertainty.")
    else:
        text = (f"Intervals: {100 * LEVEL:g} % percentile intervals of a paired bootstrap over the {n}images ({replicates} "
                "replicates, seeded): each replicate redraws the images with replacement, the same draw for every method "
                "and cell, and recomputes every number.")
    return text + " " + NO_INTERVAL


def pairwise_section(comparisons: list[Comparison], labels: dict[str, str], what: str, column: str, digits: int, scale: float = 1.0,
              seeds: bool = False) -> tuple[list[str], str | None]:
    """The Markdown of a pairwise table and its one-line summary (None when nothing was tested).

    Args:
        what: the statistic compared, e.g. ``"SUM"``.
        column: the head of the difference column, e.g. ``"SUM(A) - SUM(B)"``.
        scale: 100 for a difference of fractions printed in percent points.
        seeds: add the column of seeds behind each comparison.
    """
    tested = [c for c in comparisons if c.p is not None]
    if not tested:
        return ["No pairwise test: the cells have no per-image outcomes.", ""], None
    significant = sum(1 for c in tested if c.significant)
    head = ["A", "B", f"{column} [{100 * LEVEL:g} % interval]"] + (["Seeds"] if seeds else [])
    head += ["p", "p (Holm)", f"significant at {100 * ALPHA:g} % after Holm"]
    rows = []
    for c in comparisons:
        row = [labels.get(c.first, c.first), labels.get(c.second, c.second), interval(c.difference, digits, scale)]
        if seeds:
            row.append("no shared seed" if c.difference.value is None else seeds_text(c.difference.seeds, c.difference.has_interval))
        row += [p_value(c.p), p_value(c.p_holm), {True: "yes", False: "no", None: "—"}[c.significant]]
        rows.append(row)
    line = f"{significant} of {len(tested)} pairwise differences of {what} are significant at {100 * ALPHA:g} % after Holm."
    untested = len(comparisons) - len(tested)
    text = [f"Every pair of methods, A ranked above B. p: two-sided bootstrap p-value of the difference; p (Holm): "
            f"adjusted by Holm-Bonferroni over the {len(tested)} tested comparisons of this table. {line}"
            + (f" The {untested} rows without a p involve cells without per-image outcomes (or two methods without a "
               "shared seed)." if untested else ""), "",
            markdown_table(head, rows, "ll" + "r" * (len(head) - 2)), ""]
    return text, line


def _rounded(value: float | None) -> float | None:
    """A computed number as the CSVs write it: 9 decimals, so that the last bits of a BLAS sum, which may differ
    between machines, do not change the files."""
    return None if value is None else round(float(value), 9)


def _pairs_csv(path: Path, tables: list[list[Comparison]]) -> None:
    """Every comparison of ``tables`` as a CSV row (:data:`PAIR_COLUMNS`)."""
    rows = []
    for comparisons in tables:
        for c in comparisons:
            d = c.difference
            rows.append({"statistic": c.statistic, "first": c.first, "second": c.second, "difference": _rounded(d.value),
                         "low": _rounded(d.low), "high": _rounded(d.high), "seeds": d.seeds or "", "p": _rounded(c.p),
                         "p_holm": _rounded(c.p_holm), "significant": "" if c.significant is None else int(c.significant)})
    write_csv(path, rows, PAIR_COLUMNS)


def _with_interval(row: dict, estimate: Estimate | None, field: str) -> dict:
    """``row`` plus ``<field>_low`` and ``<field>_high`` (empty without an interval)."""
    has = estimate is not None and estimate.has_interval
    return {**row, f"{field}_low": _rounded(estimate.low) if has else None, f"{field}_high": _rounded(estimate.high) if has else None}


def _seed(row: dict) -> int:
    return int(row.get("seed", 0))


def _retraining_rows(cells: list[dict], retrainings: dict[tuple[str, str, float, int], Estimate]) -> list[dict]:
    """The retraining cells, each with its seed and the interval of its accuracy alone (over images)."""
    rows = []
    for row in sorted(cells, key=lambda r: (r["method"], r["mode"], r["fraction"], _seed(r))):
        key = (row["method"], row["mode"], round(float(row["fraction"]), 6), _seed(row))
        rows.append(_with_interval({**row, "seed": _seed(row)}, retrainings.get(key), "accuracy"))
    return rows


def _reference_text(summary: KarRoarSummary) -> str:
    """The unmasked reference with its interval, then each seed's."""
    reference = summary.reference
    text = f"{percent_interval(reference)} %"
    if reference is not None and reference.seeds:
        text += f" ({seeds_text(reference.seeds, reference.has_interval)}" if reference.seeds == 1 else f" ({reference.seeds} seeds"
        if len(summary.reference_seeds) > 1:
            text += "; per seed: " + ", ".join(f"seed {s}: {percent_interval(e)} %" for s, e in summary.reference_seeds.items())
        text += ")"
    return text


def _d_sentence(summary: KarRoarSummary) -> str:
    """Why there is no D column."""
    random = summary.scores.get("random", {}).get("sum")
    text = "Eq. 8's difference score D is not a column: D = SUM - SUM(Random) for every method"
    if random is not None and random.value is not None and abs(random.value) < 1e-12:
        return text + (", and SUM(Random) is 0 by construction because each random ROAR(p) cell reuses the random "
                       "KAR(1 - p) cell, so D equals SUM.")
    return text + ", so it is SUM shifted by the Random row's SUM."


def write_kar_roar(results: Path, cells: list[dict], run: dict, summary: KarRoarSummary, timing: dict) -> str:
    """``kar_roar.csv``, ``kar_roar_pairs.csv`` and ``kar_roar.md`` (Table 5 layout, Table 2's scores, the time
    per image, the pairwise differences)."""
    fractions, methods, labels = summary.fractions, summary.methods, summary.labels
    write_csv(results / "kar_roar.csv", _retraining_rows(cells, summary.retrainings),
              ["method", "label", "mode", "fraction", "seed", "accuracy", "accuracy_low", "accuracy_high", "best_accuracy",
               "seconds", "seconds_per_epoch", "shared_with", "train_images", "val_images", "image_size"])
    _pairs_csv(results / "kar_roar_pairs.csv", [summary.comparisons.get(s, []) for s in ("sum", "kar", "roar")])
    # A run still in progress has no run.json yet: its settings.json says the same.
    settings = load_run_settings(results / "kar_roar")
    size = run.get("saliency_size", settings.get("saliency_size"))
    network = run.get("network", settings.get("architecture", "network"))
    smoe_time = timing.get(("smoe_prior", size), {}).get("seconds_per_image")

    def seeds(method: str) -> str:
        return seeds_text(len(summary.seeds.get(method, ())), summary.has_intervals(method))

    head = ["Method", "Seeds"] + [f"KAR {100 * f:g}%" for f in fractions] + [f"ROAR {100 * f:g}%" for f in fractions]
    wide = [[labels[m], seeds(m)] + [percent_interval(summary.kar.get(m, {}).get(f)) for f in fractions]
            + [percent_interval(summary.roar.get(m, {}).get(f)) for f in fractions] for m in methods]
    score_rows = []
    for m in summary.ranked:
        s = summary.scores[m]
        seconds = timing.get((m, size), {}).get("seconds_per_image")
        score_rows.append([labels[m], seeds(m), interval(s["kar"]), interval(s["roar"]), interval(s["sum"]),
                           interval(s["information"]), number(1000 * seconds, 1) if seconds else "—", ratio(seconds, smoe_time)])
    incomplete = [m for m in methods if m not in summary.scores]
    seen = run.get("explained_model_val_accuracy")
    images = f"{summary.images} " if summary.images else ""
    text = [f"# KAR / ROAR with retraining ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        f"Accuracy (%) on the {images}masked validation images of a {network} retrained from scratch on "
        "the masked training "
        "images, after the last epoch (like the paper's Table 5), the mean over the retraining seeds of each cell with its "
        f"{100 * LEVEL:g} % interval. KAR keeps the p% most salient pixels (higher is better); ROAR removes them (lower is "
        "better). Removed pixels are the dataset mean colour. Seeds: the retraining seeds every cell of the method has.",
        "",
    ]
    if summary.reference is not None:
        text += [f"Reference: retrained on UNMASKED images, same schedule: {_reference_text(summary)}.", ""]
    if seen:
        text += ["The maps come from the explained model, trained at "
                 f"{run.get('model_size')} px; its validation accuracy on the images it computed the maps on: "
                 + _model_accuracy(seen) + ".", ""]
    text += [markdown_table(head, wide), ""]
    if LEARNED in methods:
        text += [f"{labels[LEARNED]}: its layer weights were fitted on the even-id half of these validation images (the "
                 "layers protocol), so here it is partly scored on the images it was fitted to; weights.md compares it "
                 "with the other weightings on the held-apart half only.", ""]
    text += [
        "## Scores (like the paper's Table 2)",
        "",
        "KAR = sum of the KAR accuracies, ROAR = minus the sum of the ROAR accuracies, SUM = KAR + ROAR (fractions, "
        "as the paper's Table 2 sums its Table 5), over the seeds every cell of the method has. I applies Eq. 9 "
        "(natural log, see the scores module) over the percentages, with z = the random map's accuracies over the seeds "
        "the method shares with it: 0 = no better than random, larger is better. " + _d_sentence(summary) + " "
        f"Time: wall ms per image of the method alone at {size or '?'} px, measured in the run; x = relative to SMOE Scale "
        "+ prior weights.",
        "",
        markdown_table(SCORE_HEAD, score_rows),
        "",
    ]
    if incomplete:
        text += [f"Incomplete (cells still missing): {', '.join(incomplete)}.", ""]
    lines = []
    if len(summary.ranked) > 1 and not any(c.p is not None for table in summary.comparisons.values() for c in table):
        text += ["## Pairwise differences", "", "No pairwise test: the cells have no per-image outcomes.", ""]
    elif len(summary.ranked) > 1:
        for statistic, what in (("sum", "SUM"), ("kar", "KAR"), ("roar", "ROAR")):
            table, line = pairwise_section(summary.comparisons.get(statistic, []), labels, what, f"{what}(A) - {what}(B)", 2, seeds=True)
            text += [f"## Pairwise differences of {what}", "", *table]
            lines.append(line)
    text += ["## Uncertainty", "", _uncertainty_note(summary.replicates, summary.images, seeds=True), ""]
    text += ["![accuracy against percentage](kar_roar.png)", ""]
    (results / "kar_roar.md").write_text("\n".join(text))
    section = [markdown_table(SCORE_HEAD, score_rows)]
    if incomplete:
        section.append(f"\nIncomplete (cells still missing): {', '.join(incomplete)}.")
    if lines and lines[0]:
        section.append(f"\n{lines[0]}")
    if summary.reference is not None:
        section.append(f"\nRetrained on unmasked images: {_reference_text(summary)}.")
    if seen:
        section.append("Explained model's validation accuracy: " + _model_accuracy(seen) + ".")
    return "\n".join(section)


def write_layers(results: Path, cells: list[dict], run: dict, summary: LayerSummary) -> str:
    """``layers.csv`` and ``layers.md`` (Table 4 layout, then Table 1's scores)."""
    write_csv(results / "layers.csv", _retraining_rows(cells, summary.retrainings),
              ["method", "label", "mode", "fraction", "seed", "accuracy", "accuracy_low", "accuracy_high", "best_accuracy",
               "seconds", "train_images", "val_images", "image_size"])

    def seeds(prefix: str) -> str:
        estimates = [summary.kar.get(f"{prefix}_L{k}") for k in LAYERS] + [summary.roar.get(f"{prefix}_L{k}") for k in LAYERS]
        return seeds_text(len(summary.seeds.get(prefix, ())), all(e is not None and e.has_interval for e in estimates))

    head = ["Statistic", "Seeds"] + [f"KAR L{k}" for k in LAYERS] + [f"ROAR L{k}" for k in LAYERS]
    wide = [[summary.label(prefix), seeds(prefix)] + [percent_interval(summary.kar.get(f"{prefix}_L{k}")) for k in LAYERS]
            + [percent_interval(summary.roar.get(f"{prefix}_L{k}")) for k in LAYERS] for prefix in summary.statistics]
    ranked = sorted(summary.scores, key=lambda p: -summary.scores[p]["difference"].value)
    table1 = [[summary.label(p), seeds(p), interval(summary.scores[p]["difference"]), interval(summary.scores[p]["information"])]
              for p in ranked]
    table1_head = ["Statistic", "Seeds", "Difference score", "Information score"]
    text = [f"# Per-layer KAR / ROAR ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        "Each single-scale map L1 (finest) .. L5 (coarsest) of each statistic is used as an INPUT-PIXEL mask "
        f"(KAR keeps the top {percent(summary.kar_fraction, 1)} %, ROAR removes the top {percent(summary.roar_fraction, 1)} %), "
        "and the network is retrained from scratch. The paper instead masks the activations at each layer and "
        "fine-tunes the layers after it (Section 3.1); this is the cheaper input-space variant. The random rows "
        "are random maps drawn at each layer's resolution and upsampled the same way. Accuracy (%) over the "
        f"{summary.images or '?'} validation images, the mean over the retraining seeds with its {100 * LEVEL:g} % interval.",
        "",
        markdown_table(head, wide),
        "",
        "## Scores (like the paper's Table 1)",
        "",
        "Difference score: Eq. 8; information score: Eq. 9 with the natural logarithm (what reproduces Table 1); "
        "z = the random maps at the same layer, over the seeds the statistic shares with them.",
        "",
        markdown_table(table1_head, table1),
        "",
        "## Uncertainty",
        "",
        _uncertainty_note(summary.replicates, summary.images, seeds=True),
        "",
        "![score per layer](layers.png)",
        "",
    ]
    (results / "layers.md").write_text("\n".join(text))
    return markdown_table(table1_head, table1)


def write_road(results: Path, cells: list[dict], run: dict, summary: RoadSummary) -> str:
    """``road.csv``, ``road_pairs.csv`` and ``road.md`` (MoRF and LeRF curves, their means, best LeRF - MoRF
    first, and the pairwise differences of LeRF - MoRF)."""
    rows = [_with_interval(row, summary.row(row), "accuracy")
            for row in sorted(cells, key=lambda r: (r["method"], r["order"], r["fraction"]))]
    write_csv(results / "road.csv", rows, ["method", "label", "order", "fraction", "accuracy", "accuracy_low", "accuracy_high",
                                           "images", "seconds"])
    _pairs_csv(results / "road_pairs.csv", [summary.comparisons])
    fractions = summary.fractions
    head = (["Method"] + [f"MoRF {100 * f:g}%" for f in fractions] + [f"LeRF {100 * f:g}%" for f in fractions]
            + ["MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"])
    rows = [[summary.labels[m]] + [percent_interval(v) for v in summary.curve(m, "morf")]
            + [percent_interval(v) for v in summary.curve(m, "lerf")] + [percent_interval(v) for v in summary.means[m]]
            for m in summary.ranked]
    compact_head = ["Method", "MoRF mean (lower better)", "LeRF mean (higher better)", "LeRF - MoRF (higher better)"]
    compact = [[summary.labels[m]] + [percent_interval(v) for v in summary.means[m]] for m in summary.ranked]
    original = summary.original
    table, line = pairwise_section(summary.comparisons, summary.labels, "LeRF - MoRF", "(LeRF - MoRF) of A minus that of B, percent points",
                           2, scale=100.0)
    text = [f"# ROAD: remove and debias, no retraining ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        f"Accuracy (%) of the ORIGINAL model on {summary.images or '?'} validation images at {run.get('size', '?')} px "
        "after removing p% of the pixels, most relevant first (MoRF) or least relevant first (LeRF); removed pixels "
        "are imputed by noisy linear interpolation of their neighbours (Rong et al. 2022)."
        + (f" Accuracy on the unmodified images: {percent_interval(original)} %." if original is not None else ""),
        "",
        markdown_table(head, rows),
        "",
    ]
    if len(summary.comparisons) > 0:
        text += ["## Pairwise differences of LeRF - MoRF", "", *table]
    text += ["## Uncertainty", "", _uncertainty_note(summary.replicates, summary.images, seeds=False), ""]
    text += ["![ROAD curves](road.png)", ""]
    (results / "road.md").write_text("\n".join(text))
    return markdown_table(compact_head, compact) + (f"\n\n{line}" if line else "")


def write_deletion(results: Path, cells: list[dict], run: dict, summary: DeletionSummary) -> str:
    """``deletion.csv``, ``deletion_pairs.csv`` and ``deletion.md`` (areas under the curves, best insertion -
    deletion first, and the pairwise differences of insertion - deletion)."""
    rows = [_with_interval(row, summary.area(row["method"], row["kind"]), "auc")
            for row in sorted(cells, key=lambda r: (r["method"], r["kind"]))]
    write_csv(results / "deletion.csv", rows, ["method", "label", "kind", "auc", "auc_low", "auc_high", "auc_std",
                                               "auc_of_mean_curve", "images", "steps", "seconds"])
    _pairs_csv(results / "deletion_pairs.csv", [summary.comparisons])
    rows = [[summary.labels[m], interval(summary.area(m, "deletion"), 3), interval(summary.area(m, "insertion"), 3),
             interval(summary.gap(m), 3)] for m in summary.ranked]
    head = ["Method", "Deletion AUC (lower better)", "Insertion AUC (higher better)", "Insertion - Deletion (higher better)"]
    config = run.get("config", {})
    table, line = pairwise_section(summary.comparisons, summary.labels, "insertion - deletion",
                           "(Insertion - Deletion) of A minus that of B", 3)
    text = [f"# Deletion / insertion (Petsiuk et al. 2018) ({len(cells)} cells)", "", *_produced_by(run)]
    text += [
        f"Mean area under the curve of the softmax probability of the predicted class, over {summary.images or '?'} "
        f"validation images at {run.get('size', '?')} px, as the most salient pixels are deleted (replaced by the "
        f"{config.get('deletion_substrate', 'mean')} substrate) or inserted into a blurred copy, in "
        f"{config.get('deletion_steps', '?')} steps. Original model, no retraining.",
        "",
        markdown_table(head, rows),
        "",
    ]
    if len(summary.comparisons) > 0:
        text += ["## Pairwise differences of insertion - deletion", "", *table]
    text += ["## Uncertainty", "", _uncertainty_note(summary.replicates, summary.images, seeds=False), ""]
    text += ["![deletion and insertion curves](deletion.png)", ""]
    (results / "deletion.md").write_text("\n".join(text))
    return markdown_table(head, rows) + (f"\n\n{line}" if line else "")


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
