"""``weights.md``: SMOE Scale with layer weights learned from the layers protocol against equal weights
and the paper's prior, scored on the held-apart validation images only.

The weights are fitted on the even image ids (:mod:`geosal.evaluation.layer_weights`); this report keeps
only the odd ids of every retraining cell, so the learned weighting is not scored on the images it was
fitted to, and compares the three weightings (and the random map) with the same paired bootstrap as the
main table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geosal.evaluation.catalog import LEARNED
from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.layer_weights import derivation_images, learned_weights
from geosal.evaluation.report.summary import summarise_kar_roar
from geosal.evaluation.report.tables import interval, markdown_table, pairwise_section, seeds_text
from geosal.evaluation.uncertainty import LEVEL, with_holm

WEIGHTINGS = ("random", "smoe_equal", "smoe_prior", LEARNED)
"""The methods of the comparison."""


def held_apart(cells: list[dict]) -> list[dict]:
    """The retraining cells restricted to the held-apart (odd id) validation images, accuracies recomputed.

    Cells without per-image outcomes are left out (they cannot be restricted)."""
    out = []
    for row in cells:
        if "correct" not in row or "val_ids" not in row:
            continue
        keep = ~derivation_images(row["val_ids"])
        correct = np.asarray(row["correct"])[keep]
        out.append({**row, "correct": correct.tolist(), "val_ids": np.asarray(row["val_ids"])[keep].tolist(),
                    "accuracy": float(correct.mean()), "val_images": int(keep.sum())})
    return out


def write_weights(results: Path, kar_roar_cells: list[dict], layer_cells: list[dict]) -> str | None:
    """Write ``weights.md``; its README summary, or None when the learned weighting has no retraining cell yet."""
    if not any(row["method"] == LEARNED for row in kar_roar_cells) or not layer_cells:
        return None
    try:
        weights, scores = learned_weights(layer_cells)
    except EvaluationError as error:
        return f"No learned weights: {error}."
    cells = held_apart([r for r in kar_roar_cells if r["method"] in WEIGHTINGS or r["mode"] == "none"])
    if not cells or not cells[0]["val_ids"]:
        return "No held-apart (odd id) validation image to score the learned weights on."
    summary = summarise_kar_roar(cells)
    labels = summary.labels
    rows = [[labels[m], seeds_text(len(summary.seeds.get(m, ())), summary.has_intervals(m)),
             interval(summary.scores[m]["kar"]), interval(summary.scores[m]["roar"]), interval(summary.scores[m]["sum"])]
            for m in summary.ranked]
    comparisons = with_holm([c for c in summary.comparisons.get("sum", []) if "random" not in (c.first, c.second)])
    pairs, line = pairwise_section(comparisons, labels, "SUM", "SUM(A) - SUM(B)", 2, seeds=True)
    layer_rows = [[f"L{k}", f"{d:.3f}", f"{w:.2f}", f"{p:.2f}"] for k, (d, w, p) in
                  enumerate(zip(scores, weights, (0.18, 0.15, 0.37, 0.40, 0.72)), 1)]
    text = [
        "# Learned layer weights against equal and the paper's prior", "",
        "The paper weighted SMOE Scale's five scales by how faithful each scale's map was alone (its prior "
        "[0.18, 0.15, 0.37, 0.40, 0.72]). Here the same rule is applied to this network: the layers protocol's "
        "difference score (Eq. 8) of each single-scale map against that scale's random map, measured on the even "
        "validation image ids, clipped at 0 and divided by the largest.", "",
        markdown_table(["Layer", "D on the derivation images", "Learned weight", "Paper's prior"], layer_rows, "lrrr"), "",
        f"Scored on the {summary.images or 0} held-apart (odd id) validation images only, with the paired bootstrap of "
        f"kar_roar.md ({100 * LEVEL:g} % intervals):", "",
        markdown_table(["Weighting", "Seeds", "KAR", "ROAR", "SUM"], rows, "llrrr"), "",
        *pairs,
    ]
    (results / "weights.md").write_text("\n".join(text))
    best = summary.ranked[0] if summary.ranked else None
    summary_line = (f"Learned weights {list(weights)}. On the held-apart images the best SUM is "
                    f"{labels[best]} ({interval(summary.scores[best]['sum'])})." if best else "")
    return " ".join(part for part in (summary_line, line or "") if part)
