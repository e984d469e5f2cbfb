"""The reports: numbers against hand computations, and the committed results rebuilt from their cells."""

from __future__ import annotations

import math
import shutil

import pytest
from PIL import Image

from geosal.evaluation.report import write_all
from geosal.evaluation.report.summary import summarise_deletion, summarise_kar_roar, summarise_layers, summarise_road
from geosal.evaluation.report.tables import number, percent, write_kar_roar
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


def test_kar_roar_summary_against_hand_computed_scores():
    summary = summarise_kar_roar(KAR_ROAR_CELLS)
    assert summary.methods == ["random", "gradcam", "smoe"] and summary.fractions == [0.1, 0.5] and summary.reference == 0.9
    assert set(summary.scores) == {"random", "smoe"}  # gradcam is incomplete
    smoe = summary.scores["smoe"]
    assert smoe["kar"] == pytest.approx(1.2) and smoe["roar"] == pytest.approx(-0.6) and smoe["sum"] == pytest.approx(0.6)
    assert smoe["difference"] == pytest.approx((0.6 - 0.4) + (0.4 - 0.2) + (0.5 - 0.3) + (0.7 - 0.5))
    information = -(0.4 * math.log(0.4 / 0.6) + 0.2 * math.log(0.2 / 0.4)) - (0.3 * math.log(0.3 / 0.5) + 0.5 * math.log(0.5 / 0.7))
    assert smoe["information"] == pytest.approx(information)
    assert summary.scores["random"]["difference"] == pytest.approx(0) and summary.scores["random"]["information"] == pytest.approx(0)


def test_kar_roar_tables_rank_by_sum_and_name_the_incomplete(tmp_path):
    section = write_kar_roar(tmp_path, KAR_ROAR_CELLS, {"command": "geosal evaluate --epochs 1"}, summarise_kar_roar(KAR_ROAR_CELLS), {})
    rows = section.splitlines()[2:4]  # after the header and the alignment row
    assert [row.split(" | ")[0] for row in rows] == ["| SMOE", "| RANDOM"]  # SUM 0.60 before -0.20
    assert "| SMOE | 1.20 | -0.60 | 0.60 | 0.80 |" in section
    text = (tmp_path / "kar_roar.md").read_text()
    assert "Incomplete (cells still missing): gradcam." in text and "    geosal evaluate --epochs 1" in text
    assert "Incomplete (cells still missing): gradcam." in section and "Retrained on unmasked images: 90.00 %." in section
    assert "| RANDOM | 30.00 | 50.00 | 60.00 | 40.00 |" in text  # Table 5 layout: KAR 10, 50 %, then ROAR 10, 50 %
    assert (tmp_path / "kar_roar.csv").read_text().count("\n") == 1 + len(KAR_ROAR_CELLS)


def test_road_deletion_and_layer_summaries():
    road = summarise_road([
        {"method": "original", "label": "Unmodified", "order": "none", "fraction": 0.0, "accuracy": 0.95},
        *({"method": "a", "label": "A", "order": o, "fraction": f, "accuracy": v}
          for o, f, v in [("morf", 0.1, 0.8), ("morf", 0.5, 0.4), ("lerf", 0.1, 0.9), ("lerf", 0.5, 0.7)]),
        {"method": "b", "label": "B", "order": "morf", "fraction": 0.1, "accuracy": 0.5},
    ])
    assert road.original == 0.95 and road.fractions == [0.1, 0.5] and list(road.labels) == ["a", "b"]
    assert road.means["a"] == pytest.approx((0.6, 0.8, 0.2)) and road.means["b"] == (None, None, None)
    assert road.curve("b", "morf") == [0.5, None]

    deletion = summarise_deletion([{"method": "a", "label": "A", "kind": "deletion", "auc": 0.25},
                                   {"method": "a", "label": "A", "kind": "insertion", "auc": 0.75},
                                   {"method": "b", "label": "B", "kind": "deletion", "auc": 0.5}])
    assert deletion.gap("a") == 0.5 and deletion.gap("b") is None and deletion.area("b", "insertion") is None

    layers = summarise_layers([{"method": f"{p}_L{k}", "label": f"{label} L{k}", "mode": mode, "fraction": fraction,
                                "accuracy": 0.5 + (0.1 if p == "smoe" and mode == "kar" else 0)}
                               for p, label in (("std", "STD"), ("random", "Random"), ("smoe", "SMOE Scale")) for k in range(1, 6)
                               for mode, fraction in (("kar", 0.025), ("roar", 0.1))])
    assert layers.statistics == ["random", "smoe", "std"] and layers.label("smoe") == "SMOE Scale"
    assert layers.scores["smoe"]["difference"] == pytest.approx(0.5) and layers.per_layer["std"] == pytest.approx([0] * 5)
    assert (layers.kar_fraction, layers.roar_fraction) == (0.025, 0.1)


def test_formatting():
    assert percent(0.12345) == "12.35" and percent(None) == "—"
    assert number(-0.001) == "0.00" and number(float("nan")) == "—" and number(1.23456, 4) == "1.2346"


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
