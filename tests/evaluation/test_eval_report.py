"""The reports: numbers against hand computations, and the committed results rebuilt from their cells."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geosal.evaluation.cells import CellStore
from geosal.evaluation.report import write_all
from geosal.evaluation.report.readme import TITLES, precision_text, readme_text
from geosal.evaluation.report.summary import summarise_deletion, summarise_kar_roar, summarise_layers, summarise_road
from geosal.evaluation.report.tables import IMAGE_ONLY, interval, number, p_value, percent, percent_interval, seeds_text, write_kar_roar
from geosal.evaluation.uncertainty import Estimate
from tests.paths import PROJECT

COMMITTED = PROJECT / "results" / "ucmerced"


def kar_roar_cell(method: str, mode: str, fraction: float, accuracy: float) -> dict:
    return {"method": method, "label": method.upper(), "mode": mode, "fraction": fraction, "accuracy": accuracy}


KAR_ROAR_CELLS = [
    kar_roar_cell("gradcam", "kar", 0.1, 0.4),  # incomplete: no other cell
    *(kar_roar_cell("smoe", mode, f, a) for mode, f, a in [("kar", 0.1, 0.5), ("kar", 0.5, 0.7), ("roar", 0.1, 0.4), ("roar", 0.5, 0.2)]),
    *(kar_roar_cell("random", mode, f, a) for mode, f, a in [("kar", 0.1, 0.3), ("kar", 0.5, 0.5), ("roar", 0.1, 0.6), ("roar", 0.5, 0.4)]),
    {"method": "unmasked", "label": "Unmasked", "mode": "none", "fraction": 0.0, "accuracy": 0.9},
]


def value(estimate):
    return None if estimate is None else estimate.value


SMOE_INFORMATION = -(0.4 * math.log(0.4 / 0.6) + 0.2 * math.log(0.2 / 0.4)) - (0.3 * math.log(0.3 / 0.5) + 0.5 * math.log(0.5 / 0.7))


def test_kar_roar_summary_against_hand_computed_scores():
    """Cells as written before per-image outcomes and seeds: seed 0, point estimates without intervals."""
    summary = summarise_kar_roar(KAR_ROAR_CELLS)
    assert summary.methods == ["random", "gradcam", "smoe"] and summary.fractions == [0.1, 0.5] and summary.reference.value == 0.9
    assert set(summary.scores) == {"random", "smoe"} and summary.ranked == ["smoe", "random"]  # gradcam is incomplete
    smoe = {name: value(e) for name, e in summary.scores["smoe"].items()}
    assert smoe["kar"] == pytest.approx(1.2) and smoe["roar"] == pytest.approx(-0.6) and smoe["sum"] == pytest.approx(0.6)
    assert smoe["difference"] == pytest.approx((0.6 - 0.4) + (0.4 - 0.2) + (0.5 - 0.3) + (0.7 - 0.5))
    assert smoe["information"] == pytest.approx(SMOE_INFORMATION)
    assert value(summary.scores["random"]["difference"]) == pytest.approx(0) and value(summary.scores["random"]["information"]) == 0
    assert not any(e.has_interval for e in summary.scores["smoe"].values()) and summary.seeds["smoe"] == (0,)
    assert [c.p for c in summary.comparisons["sum"]] == [None] and summary.images is None


def test_kar_roar_tables_rank_by_sum_and_name_the_incomplete(tmp_path):
    section = write_kar_roar(tmp_path, KAR_ROAR_CELLS, {"command": "geosal evaluate --epochs 1"}, summarise_kar_roar(KAR_ROAR_CELLS), {})
    rows = section.splitlines()[2:4]  # after the header and the alignment row
    assert [row.split(" | ")[0] for row in rows] == ["| SMOE", "| RANDOM"]  # SUM 0.60 before -0.20
    assert f"| SMOE | 1 seed, no interval | 1.20 | -0.60 | 0.60 | {SMOE_INFORMATION:.2f} |" in section
    assert "D vs random" not in section
    text = (tmp_path / "kar_roar.md").read_text()
    assert "Incomplete (cells still missing): gradcam." in text and "    geosal evaluate --epochs 1" in text
    assert "Incomplete (cells still missing): gradcam." in section
    assert "Retrained on unmasked images: 90.00 % (1 seed, no interval)." in section
    # Table 5 layout: KAR 10, 50 %, then ROAR 10, 50 %
    assert "| RANDOM | 1 seed, no interval | 30.00 | 50.00 | 60.00 | 40.00 |" in text
    assert "No pairwise test: the cells have no per-image outcomes." in text
    assert (tmp_path / "kar_roar.csv").read_text().count("\n") == 1 + len(KAR_ROAR_CELLS)


def test_road_deletion_and_layer_summaries():
    road = summarise_road([
        {"method": "original", "label": "Unmodified", "order": "none", "fraction": 0.0, "accuracy": 0.95},
        *({"method": "a", "label": "A", "order": o, "fraction": f, "accuracy": v}
          for o, f, v in [("morf", 0.1, 0.8), ("morf", 0.5, 0.4), ("lerf", 0.1, 0.9), ("lerf", 0.5, 0.7)]),
        {"method": "b", "label": "B", "order": "morf", "fraction": 0.1, "accuracy": 0.5},
    ])
    assert road.original.value == 0.95 and road.fractions == [0.1, 0.5] and list(road.labels) == ["a", "b"]
    assert [value(e) for e in road.means["a"]] == pytest.approx([0.6, 0.8, 0.2]) and road.means["b"] == (None, None, None)
    assert [value(e) for e in road.curve("b", "morf")] == [0.5, None] and road.ranked == ["a", "b"]

    deletion = summarise_deletion([{"method": "a", "label": "A", "kind": "deletion", "auc": 0.25},
                                   {"method": "a", "label": "A", "kind": "insertion", "auc": 0.75},
                                   {"method": "b", "label": "B", "kind": "deletion", "auc": 0.5}])
    assert deletion.gap("a").value == 0.5 and deletion.gap("b") is None and deletion.area("b", "insertion") is None

    layers = summarise_layers([{"method": f"{p}_L{k}", "label": f"{label} L{k}", "mode": mode, "fraction": fraction,
                                "accuracy": 0.5 + (0.1 if p == "smoe" and mode == "kar" else 0)}
                               for p, label in (("std", "STD"), ("random", "Random"), ("smoe", "SMOE Scale")) for k in range(1, 6)
                               for mode, fraction in (("kar", 0.025), ("roar", 0.1))])
    assert layers.statistics == ["random", "smoe", "std"] and layers.label("smoe") == "SMOE Scale"
    assert layers.scores["smoe"]["difference"].value == pytest.approx(0.5)
    assert [value(e) for e in layers.per_layer["std"]] == pytest.approx([0] * 5)
    assert (layers.kar_fraction, layers.roar_fraction) == (0.025, 0.1)


def test_formatting():
    assert percent(0.12345) == "12.35" and percent(None) == "—"
    assert number(-0.001) == "0.00" and number(float("nan")) == "—" and number(1.23456, 4) == "1.2346"
    assert interval(Estimate(0.6412, 0.5101, 0.7699)) == "0.64 [0.51, 0.77]" and interval(Estimate(0.64)) == "0.64"
    assert percent_interval(Estimate(0.5, 0.45, 0.551)) == "50.00 [45.00, 55.10]" and interval(None) == interval(Estimate(None)) == "—"
    assert seeds_text(3) == "3" and seeds_text(1) == IMAGE_ONLY and seeds_text(1, False) == "1 seed, no interval"
    assert p_value(None) == "—" and p_value(2 / 2001) == "0.001" and p_value(0.0001) == "1.0e-04" and p_value(0.5) == "0.500"


def test_precision_counts_retrainings_not_shared_cells():
    cells = [{"bf16": True}] * 3 + [{"bf16": False}] * 2 + [{"bf16": True, "shared_with": "kar 50%"}, {"accuracy": 0.5}]
    assert precision_text(cells) == "bfloat16 autocast: 3, float32: 2 retrainings"
    assert precision_text(cells[3:]) == "float32: 2 retrainings"
    assert precision_text([{"accuracy": 0.5}]) is None  # cells from before the precision was recorded
    text = readme_text({name: None for name in TITLES}, {"kar-roar": {"command": "geosal evaluate", "threads": 2}},
                       precisions={"kar-roar": precision_text(cells)})
    assert "kar-roar (finished ? UTC, 2 threads; bfloat16 autocast: 3, float32: 2 retrainings)" in text


# --- cells with per-image outcomes and several seeds (the current format) ------------------------------------

IMAGES = 30
FRACTIONS = (0.1, 0.5, 0.9)
QUALITY = {"random": 0.0, "smoe_prior": 0.3, "gradcampp": 0.15, "one_seed": 0.2}
LABELS = {"random": "Random", "smoe_prior": "SMOE Scale + Prior", "gradcampp": "Grad-CAM++", "one_seed": "One Seed",
          "unmasked": "Unmasked"}


def outcomes(rng: np.random.Generator, p: float, n: int = IMAGES) -> list[int]:
    return (rng.random(n) < min(max(p, 0.0), 1.0)).astype(int).tolist()


def write_cells(results: Path) -> dict[tuple, list[int]]:
    """Synthetic cells of every protocol through CellStore, as the runner writes them; returns the kar_roar
    per-image outcomes by (method, mode, fraction, seed).

    kar_roar: 3 seeds (one_seed: seed 0 only), random ROAR(p) sharing random KAR(1 - p) without a
    ``correct`` of its own, val_ids in a fixed order except one cell (reversed, with its outcomes).
    road: 21 images, one method from before per-image outcomes. deletion: 21 images, ids shuffled per cell.
    """
    rng = np.random.default_rng(0)
    ids = list(range(500, 500 + IMAGES))
    store = CellStore(results / "kar_roar", {"training": {"seed": 0}})
    written = {}
    for seed in range(3):
        base = {"protocol": "kar-roar", "seed": seed, "val_ids": ids, "val_images": IMAGES, "train_images": 60, "image_size": 16,
                "best_accuracy": 0.5, "seconds": 1.0, "seconds_per_epoch": 1.0, "history": []}
        correct = outcomes(rng, 0.6)
        store.put({**base, "method": "unmasked", "label": "Unmasked", "mode": "none", "fraction": 1.0, "accuracy": np.mean(correct),
                   "correct": correct}, "unmasked", "none", 1.0, seed)
        written["unmasked", "none", 1.0, seed] = correct
        for method, quality in QUALITY.items():
            if method == "one_seed" and seed:
                continue
            for mode in ("kar", "roar"):
                for f in FRACTIONS:
                    key = (method, mode, f, seed)
                    if method == "random" and mode == "roar":  # shares KAR(1 - p), as the runner does
                        source = store.get(method, "kar", round(1 - f, 6), seed)
                        row = {k: v for k, v in source.items() if k != "correct"}
                        store.put({**row, "mode": "roar", "fraction": f, "shared_with": f"kar {100 * (1 - f):g}%"}, *key)
                        written[key] = written[method, "kar", round(1 - f, 6), seed]
                        continue
                    p = 0.2 + 0.4 * f + quality if mode == "kar" else 0.7 - 0.4 * f - quality / 2
                    correct = outcomes(rng, p)
                    row = {**base, "method": method, "label": LABELS[method], "mode": mode, "fraction": f,
                           "accuracy": float(np.mean(correct)), "correct": correct}
                    if key == ("gradcampp", "kar", 0.5, 1):  # another order of the same images
                        row.update(correct=correct[::-1], val_ids=ids[::-1])
                    store.put(row, *key)
                    written[key] = correct
    road_ids = list(range(21))
    road = CellStore(results / "road", {"images": 21})
    correct = outcomes(rng, 0.9, 21)
    road.put({"protocol": "road", "method": "original", "label": "Unmodified images", "order": "none", "fraction": 0.0,
              "accuracy": float(np.mean(correct)), "correct": correct, "ids": road_ids, "images": 21}, "original", "none", 0.0)
    for method, quality in {"random": 0.0, "smoe_prior": 0.4, "old": 0.2}.items():
        for order in ("morf", "lerf"):
            for f in FRACTIONS:
                correct = outcomes(rng, 0.9 - f * (0.5 + (quality if order == "morf" else -quality)), 21)
                row = {"protocol": "road", "method": method, "label": LABELS.get(method, "Old"), "order": order, "fraction": f,
                       "accuracy": float(np.mean(correct)), "images": 21}
                if method != "old":  # "old": written before per-image outcomes
                    row.update(correct=correct, ids=road_ids)
                road.put(row, method, order, f)
    deletion = CellStore(results / "deletion", {"images": 21})
    for method, quality in {"random": 0.0, "smoe_prior": 0.3}.items():
        for kind in ("deletion", "insertion"):
            areas = np.clip(rng.normal(0.3 + (quality if kind == "insertion" else 0), 0.1, 21), 0, 1)
            order = rng.permutation(21)
            deletion.put({"protocol": "deletion", "method": method, "label": LABELS[method], "kind": kind, "auc": float(areas.mean()),
                          "areas": areas[order].tolist(), "ids": order.tolist(), "curve": [0.9, 0.5, 0.1], "steps": 2,
                          "images": 21}, method, kind)
    layers = CellStore(results / "layers", {"images": IMAGES})
    for prefix, label, quality in (("random", "Random", 0.0), ("smoe", "SMOE Scale", 0.25)):
        for k in range(1, 6):
            for seed in range(2):
                for mode, fraction in (("kar", 0.025), ("roar", 0.1)):
                    correct = outcomes(rng, 0.4 + (quality if mode == "kar" else -quality))
                    layers.put({"protocol": "layers", "method": f"{prefix}_L{k}", "label": f"{label} L{k}", "mode": mode,
                                "fraction": fraction, "seed": seed, "accuracy": float(np.mean(correct)), "correct": correct,
                                "val_ids": ids, "val_images": IMAGES}, f"{prefix}_L{k}", mode, fraction, seed)
    reductions = [["dataset", "ImageNet", "UC Merced Land Use, 21 classes: 1344 training / 336 validation images (fixed split)"],
                  ["ROAD / deletion", "not in the paper", "168 validation images at 192 px, original model, no retraining"]]
    for protocol in ("kar_roar", "road", "deletion"):
        (results / protocol / "run.json").write_text(json.dumps({"command": "geosal evaluate", "reductions": reductions}))
    return written


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[Path, dict]:
    results = tmp_path_factory.mktemp("results") / "ucmerced"
    written = write_cells(results)
    write_all(results, log=lambda line: None)
    return results, written


def test_kar_roar_numbers_from_per_image_outcomes_and_seeds(reports):
    results, written = reports
    summary = summarise_kar_roar([json.loads(p.read_text()) for p in sorted((results / "kar_roar" / "cells").glob("*.json"))],
                                 replicates=300)
    assert summary.images == IMAGES and summary.seeds == {"random": (0, 1, 2), "smoe_prior": (0, 1, 2), "gradcampp": (0, 1, 2),
                                                          "one_seed": (0,)}
    # a cell: the plain mean over its seeds and images (the reversed cell realigned); random ROAR(p) = KAR(1 - p)
    cell = summary.kar["gradcampp"][0.5]
    assert cell.value == pytest.approx(np.mean([written["gradcampp", "kar", 0.5, s] for s in range(3)]))
    assert cell.seeds == 3 and cell.images == IMAGES and cell.low < cell.value < cell.high and not cell.image_only
    assert summary.roar["random"][0.1] == summary.kar["random"][0.9]
    # Table 2's sums, over the seeds
    kar = sum(np.mean([written["smoe_prior", "kar", f, s] for s in range(3)]) for f in FRACTIONS)
    roar = -sum(np.mean([written["smoe_prior", "roar", f, s] for s in range(3)]) for f in FRACTIONS)
    scores = summary.scores["smoe_prior"]
    assert (scores["kar"].value, scores["roar"].value, scores["sum"].value) == pytest.approx((kar, roar, kar + roar))
    assert all(scores[k].low <= scores[k].value <= scores[k].high for k in ("kar", "roar", "sum", "information"))
    assert summary.scores["random"]["sum"].value == pytest.approx(0) and summary.scores["one_seed"]["sum"].image_only
    assert summary.ranked[0] == "smoe_prior" and summary.ranked[-1] == "random"
    # the reference, over its seeds and per seed
    assert summary.reference.value == pytest.approx(np.mean([written["unmasked", "none", 1.0, s] for s in range(3)]))
    assert sorted(summary.reference_seeds) == [0, 1, 2] and all(e.image_only for e in summary.reference_seeds.values())
    # pairwise: 4 complete methods -> 6 pairs per statistic, Holm within each table
    assert {k: len(v) for k, v in summary.comparisons.items()} == {"sum": 6, "kar": 6, "roar": 6}
    smoe_vs_random = next(c for c in summary.comparisons["sum"] if (c.first, c.second) == ("smoe_prior", "random"))
    assert smoe_vs_random.significant and smoe_vs_random.difference.seeds == 3
    assert all(c.difference.image_only for c in summary.comparisons["sum"] if "one_seed" in (c.first, c.second))


def test_kar_roar_reports_print_intervals_seeds_and_pairwise_tables(reports):
    results, _ = reports
    text = (results / "kar_roar.md").read_text()
    bracketed = r"-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]"
    table5 = next(line for line in text.splitlines() if line.startswith("| SMOE Scale + Prior | 3 |"))
    assert len(re.findall(bracketed, table5)) == 2 * len(FRACTIONS)  # every KAR / ROAR cell with its interval
    score_row = [line for line in text.splitlines() if line.startswith("| SMOE Scale + Prior | 3 | ")][1]
    assert len(re.findall(bracketed, score_row)) == 4  # KAR, ROAR, SUM, I
    assert f"| One Seed | {IMAGE_ONLY} |" in text and "D vs random" not in text and "D equals SUM" in text
    assert "## Pairwise differences of SUM" in text and "significant at 5 % after Holm |" in text
    assert "## Pairwise differences of KAR" in text and "## Pairwise differences of ROAR" in text
    assert re.search(r"Reference: retrained on UNMASKED images, same schedule: " + bracketed + r" % \(3 seeds; per seed: seed 0: ", text)
    assert f"the {IMAGES} masked validation images" in text
    with (results / "kar_roar.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(list((results / "kar_roar" / "cells").glob("*.json")))
    assert all(float(r["accuracy_low"]) <= float(r["accuracy"]) <= float(r["accuracy_high"]) for r in rows)
    assert {r["seed"] for r in rows} == {"0", "1", "2"}
    with (results / "kar_roar_pairs.csv").open() as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == 18 and {p["statistic"] for p in pairs} == {"sum", "kar", "roar"}
    assert all(float(p["p"]) <= float(p["p_holm"]) <= 1 for p in pairs)
    readme = (results / "README.md").read_text()
    assert "of SUM are significant at 5 % after Holm" in readme and "| Method | Seeds | KAR | ROAR | SUM | I vs random |" in readme


def test_road_and_deletion_reports_with_intervals(reports):
    results, _ = reports
    road = (results / "road.md").read_text()
    assert "on 21 validation images" in road and re.search(r"Accuracy on the unmodified images: \d+\.\d\d \[", road)
    assert "## Pairwise differences of LeRF - MoRF" in road and "significant at 5 % after Holm" in road
    old = next(line for line in road.splitlines() if line.startswith("| Old |"))
    assert "[" not in old  # cells without per-image outcomes: point estimates
    assert "rows without a p involve cells without per-image outcomes" in road
    road_rows = list(csv.DictReader((results / "road.csv").open()))
    assert all(r["accuracy_low"] == "" for r in road_rows if r["method"] == "old")
    assert all(r["accuracy_low"] != "" for r in road_rows if r["method"] != "old")
    deletion = (results / "deletion.md").read_text()
    assert "over 21 validation images" in deletion and "## Pairwise differences of insertion - deletion" in deletion
    smoe = next(line for line in deletion.splitlines() if line.startswith("| SMOE Scale + Prior |"))
    assert len(re.findall(r"\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]", smoe)) == 3
    assert {r["auc_low"] != "" for r in csv.DictReader((results / "deletion.csv").open())} == {True}
    assert len(list(csv.DictReader((results / "deletion_pairs.csv").open()))) == 1
    # the image counts of the README come from the cells, not from a run's settings
    readme = (results / "README.md").read_text()
    assert "| ROAD / deletion | not in the paper | 21 validation images at 192 px" in readme
    assert f"1344 training / {IMAGES} validation images" in readme and "168" not in readme and "336" not in readme
    for name in ("kar_roar.png", "road.png", "deletion.png", "layers.png"):
        assert Image.open(results / name).size[0] > 0


def test_layer_scores_with_intervals(reports):
    results, _ = reports
    cells = [json.loads(p.read_text()) for p in sorted((results / "layers" / "cells").glob("*.json"))]
    summary = summarise_layers(cells, replicates=200)
    assert summary.seeds == {"random": (0, 1), "smoe": (0, 1)} and summary.images == IMAGES
    difference = summary.scores["smoe"]["difference"]
    assert difference.value == pytest.approx(sum(e.value for e in summary.per_layer["smoe"]))
    assert difference.seeds == 2 and difference.low > 0  # a true difference of 5 x 0.5
    text = (results / "layers.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| SMOE Scale | 2 | ") and line.count("[") == 2)
    assert row.count("]") == 2  # the difference and information scores with their intervals
    rows = list(csv.DictReader((results / "layers.csv").open()))
    assert len(rows) == 40 and all(r["accuracy_low"] and r["seed"] in ("0", "1") for r in rows)


def test_deletion_areas_are_realigned_by_image_id(reports):
    results, _ = reports
    cells = [json.loads(p.read_text()) for p in sorted((results / "deletion" / "cells").glob("*.json"))]
    summary = summarise_deletion(cells, replicates=200)
    by_kind = {(c["method"], c["kind"]): dict(zip(c["ids"], c["areas"])) for c in cells}
    expected = np.mean([by_kind["smoe_prior", "insertion"][i] - by_kind["smoe_prior", "deletion"][i] for i in range(21)])
    assert summary.gap("smoe_prior").value == pytest.approx(expected) and summary.images == 21
    # ids that are not the run's images: that cell is a point estimate
    stray = [{**c, "ids": [i + 100 for i in c["ids"]]} if c["kind"] == "insertion" and c["method"] == "random" else c for c in cells]
    summary = summarise_deletion(stray, replicates=200)
    assert not summary.area("random", "insertion").has_interval and summary.area("random", "deletion").has_interval
    assert not summary.gap("random").has_interval and summary.gap("smoe_prior").has_interval


def test_the_committed_reports_are_what_their_cells_give(tmp_path):
    """Rebuild results/ucmerced's reports from its cells, run.json and timing.json only: the same bytes."""
    rebuilt = tmp_path / "ucmerced"
    shutil.copytree(COMMITTED, rebuilt, ignore=shutil.ignore_patterns("*.md", "*.csv", "*.png"))
    shutil.copy(COMMITTED / "timing.json", rebuilt / "timing.json")
    write_all(rebuilt, log=lambda line: None)
    committed = sorted(p.name for p in COMMITTED.glob("*.*") if p.suffix in (".md", ".csv", ".png"))
    assert committed == sorted(p.name for p in rebuilt.glob("*.*") if p.suffix in (".md", ".csv", ".png"))
    for name in committed:
        if name.endswith(".png"):  # drawn by matplotlib: same size (the pixels depend on its version and fonts)
            assert Image.open(rebuilt / name).size == Image.open(COMMITTED / name).size, name
        else:
            assert (rebuilt / name).read_text() == (COMMITTED / name).read_text(), name
