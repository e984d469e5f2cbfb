"""weights.md: the learned SMOE layer weights scored on the held-apart images only."""

from __future__ import annotations

import numpy as np

from geosal.evaluation.catalog import LEARNED
from geosal.evaluation.cells import CellStore
from geosal.evaluation.report import write_all
from geosal.evaluation.report.weights import held_apart
from tests.evaluation.test_layer_weights import PAPER_ROWS

IDS = list(range(100, 140))  # 20 even (derivation) and 20 odd (held-apart) ids
ODD = np.array(IDS) % 2 == 1


def kar_roar_cells(results) -> None:
    store = CellStore(results / "kar_roar", {"test": True})
    rng = np.random.default_rng(0)
    labels = {"random": "Random", "smoe_equal": "SMOE equal", "smoe_prior": "SMOE prior", LEARNED: "SMOE learned"}
    for seed in (0, 1):
        base = {"protocol": "kar-roar", "seed": seed, "val_ids": IDS, "val_images": len(IDS)}
        correct = (rng.random(len(IDS)) < 0.8).astype(int)
        store.put({**base, "method": "unmasked", "label": "Unmasked", "mode": "none", "fraction": 1.0,
                   "accuracy": float(correct.mean()), "correct": correct.tolist()}, "unmasked", "none", 1.0, seed)
        for method, label in labels.items():
            for mode in ("kar", "roar"):
                for fraction in (0.1, 0.9):
                    if method == LEARNED:  # right on every held-apart image in KAR, wrong in ROAR; the reverse elsewhere
                        correct = np.where(ODD, mode == "kar", mode != "kar").astype(int)
                    else:
                        correct = (rng.random(len(IDS)) < 0.5).astype(int)
                    store.put({**base, "method": method, "label": label, "mode": mode, "fraction": fraction,
                               "accuracy": float(correct.mean()), "correct": correct.tolist()}, method, mode, fraction, seed)
    layers = CellStore(results / "layers", {"test": True})
    for row in PAPER_ROWS:
        layers.put({**row, "label": row["method"], "accuracy": float(np.mean(row["correct"]))},
                   row["method"], row["mode"], row["fraction"], row["seed"])


def test_held_apart_keeps_only_the_odd_ids_and_recomputes_the_accuracy():
    row = {"method": "m", "mode": "kar", "correct": [1, 0, 1, 1], "val_ids": [2, 3, 4, 5], "accuracy": 0.75}
    [kept] = held_apart([row, {"method": "old", "mode": "kar", "accuracy": 0.5}])  # no outcomes: cannot be restricted
    assert kept["val_ids"] == [3, 5] and kept["correct"] == [0, 1] and kept["accuracy"] == 0.5 and kept["val_images"] == 2


def test_weights_report_scores_the_learned_weighting_on_held_apart_images(tmp_path):
    results = tmp_path / "ucmerced"
    kar_roar_cells(results)
    write_all(results, log=lambda line: None)
    text = (results / "weights.md").read_text()
    assert "| L5 | 0.649 | 1.00 | 0.72 |" in text  # the paper's Table 4 rows give L5 the largest weight
    assert "Scored on the 20 held-apart (odd id) validation images" in text
    # On the odd ids the learned weighting is perfect: KAR 2 x 1.00, ROAR -2 x 0.00, SUM 2.00 exactly.
    learned = next(line for line in text.splitlines() if line.startswith("| SMOE learned"))
    assert "| 2.00 [2.00, 2.00] | 0.00 [0.00, 0.00] | 2.00 [2.00, 2.00] |" in learned
    assert "over the 3 tested comparisons" in text and "| 0.001 | 0.003 |" in text  # Holm over the weightings' pairs only
    readme = (results / "README.md").read_text()
    assert "Learned layer weights against equal" in readme and "weights.md" in readme
