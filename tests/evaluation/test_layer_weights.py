"""Layer weights learned from the layers protocol (geosal.evaluation.layer_weights) against the paper."""

from __future__ import annotations

import numpy as np
import pytest

from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.layer_weights import derivation_images, layer_scores, learned_weights, weights_from_scores

# Table 4 of the paper, ImageNet: KAR (2.5 % kept) and ROAR (10 % removed) accuracy per layer L1..L5, in %.
RANDOM_KAR = [66.42, 61.28, 50.67, 40.81, 42.98]
RANDOM_ROAR = [73.48, 72.41, 68.90, 64.63, 66.04]
SMOE_KAR = [56.61, 50.69, 51.25, 46.40, 63.00]
SMOE_ROAR = [44.48, 44.81, 36.35, 33.88, 21.15]
PRIOR = [0.18, 0.15, 0.37, 0.40, 0.72]


def rows_from_accuracies(table: dict[tuple[str, str], list[float]], images: int = 10_000, seeds=(0,)) -> list[dict]:
    """Cells whose per-image outcomes have exactly the given accuracies (in %)."""
    rows = []
    ids = list(range(images))
    for (statistic, mode), values in table.items():
        for layer, accuracy in enumerate(values, 1):
            hits = round(accuracy / 100 * images / 2)  # the same accuracy on the even and the odd ids
            correct = np.zeros(images, int)
            correct[0 : 2 * hits : 2] = 1
            correct[1 : 2 * hits : 2] = 1
            for seed in seeds:
                rows.append({"method": f"{statistic}_L{layer}", "mode": mode, "fraction": 0.1, "seed": seed,
                             "correct": correct.tolist(), "val_ids": ids})
    return rows


PAPER_ROWS = rows_from_accuracies({("smoe", "kar"): SMOE_KAR, ("smoe", "roar"): SMOE_ROAR,
                                   ("random", "kar"): RANDOM_KAR, ("random", "roar"): RANDOM_ROAR})


def test_the_rule_reproduces_the_papers_prior_weights_from_its_table_4():
    scores = layer_scores(PAPER_ROWS)
    expected = [(rr - sr) + (sk - rk) for rr, sr, sk, rk in zip(RANDOM_ROAR, SMOE_ROAR, SMOE_KAR, RANDOM_KAR)]
    np.testing.assert_allclose(np.array(scores) * 100, expected, atol=0.05)  # 4 accuracies rounded to 0.02 %
    weights, _ = learned_weights(PAPER_ROWS)
    # Up to Eq. 3's irrelevant scale (the prior's largest weight is 0.72), L3-L5 match to 2 decimals, L1-L2 within 0.04.
    scaled = np.array(weights) * PRIOR[-1]
    np.testing.assert_allclose(scaled[2:], PRIOR[2:], atol=0.006)
    np.testing.assert_allclose(scaled[:2], PRIOR[:2], atol=0.04)


def test_weights_come_from_the_derivation_half_only():
    rows = [dict(r) for r in PAPER_ROWS]
    for row in rows:  # spoil the held-apart (odd) images of the best layer: the weights must not change
        if row["method"] == "smoe_L5":
            correct = np.array(row["correct"])
            correct[1::2] = 1 - correct[1::2]
            row["correct"] = correct.tolist()
    assert learned_weights(rows)[0] == learned_weights(PAPER_ROWS)[0]
    assert derivation_images([4, 7, 10]).tolist() == [True, False, True]


def test_scores_use_only_the_seeds_every_cell_has():
    unfinished = [{**row, "seed": 1, "correct": [0] * len(row["correct"])} for row in PAPER_ROWS if row["method"] != "smoe_L3"]
    assert layer_scores(PAPER_ROWS + unfinished) == layer_scores(PAPER_ROWS)  # seed 1 lacks smoe_L3: left out


def test_layers_no_better_than_random_get_no_weight_and_all_bad_is_an_error():
    assert weights_from_scores([-0.1, 0.2, 0.4]) == (0.0, 0.5, 1.0)
    with pytest.raises(EvaluationError, match="no layer"):
        weights_from_scores([-0.1, 0.0, -0.3])
    with pytest.raises(EvaluationError, match="--protocol layers"):
        learned_weights([])
    with pytest.raises(EvaluationError, match="no derivation"):
        learned_weights([{**row, "val_ids": [1] * len(row["val_ids"])} for row in PAPER_ROWS])
    with pytest.raises(EvaluationError, match="no finished kar cell of smoe_L1"):
        layer_scores([r for r in PAPER_ROWS if not (r["method"] == "smoe_L1" and r["mode"] == "kar")])
