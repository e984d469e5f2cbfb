"""Eqs. 8 and 9 and Table 2's sums, against hand-computed values and the paper's own numbers."""

from __future__ import annotations

import math

import pytest

from geosal.evaluation.scores import auc, difference_score, information_score, kar_roar_sums

# The paper's Table 4 (KAR L1..L5, ROAR L1..L5, percent) and Table 1 (difference, information score).
TABLE4 = {
    "ImageNet": {
        "Random": [66.42, 61.28, 50.67, 40.81, 42.98, 73.48, 72.41, 68.90, 64.63, 66.04],
        "SMOE Scale": [56.61, 50.69, 51.25, 46.40, 63.00, 44.48, 44.81, 36.35, 33.88, 21.15],
        "STD": [51.84, 50.73, 50.72, 46.16, 62.82, 45.78, 42.74, 36.17, 34.41, 22.88],
        "Mean": [53.21, 40.34, 50.88, 46.85, 62.56, 52.66, 64.10, 37.85, 34.15, 19.19],
        "Shannon Ent": [55.43, 45.69, 50.89, 47.17, 61.18, 44.74, 51.38, 38.73, 35.78, 18.07],
        "Log Normal Mean": [55.98, 32.28, 51.08, 47.21, 62.02, 57.20, 68.22, 44.42, 34.98, 18.50],
        "Log Normal ENT": [53.01, 42.52, 51.13, 46.85, 62.26, 47.92, 62.64, 38.73, 34.50, 18.91],
        "Trunc Normal Mean": [50.67, 49.69, 50.69, 43.52, 62.87, 46.88, 49.76, 35.44, 37.58, 20.92],
        "Trunc Normal Std": [50.66, 51.02, 50.60, 42.54, 62.97, 46.78, 43.70, 35.68, 38.18, 21.57],
        "Trunc Normal Ent": [50.84, 50.62, 50.57, 43.63, 62.97, 46.92, 45.48, 35.56, 37.64, 21.25],
    },
    "Places": {
        "Random": [57.20, 53.59, 47.83, 41.26, 39.45, 60.77, 60.25, 58.14, 56.41, 55.26],
        "SMOE Scale": [49.76, 45.67, 46.39, 40.57, 53.50, 44.35, 44.61, 39.80, 40.26, 27.94],
        "STD": [47.15, 44.75, 46.28, 39.41, 53.53, 46.41, 43.69, 39.28, 41.38, 29.12],
        "Mean": [47.93, 40.38, 45.94, 41.10, 52.33, 50.66, 56.58, 41.26, 39.90, 27.38],
        "Shannon Ent": [48.80, 43.20, 45.92, 41.31, 50.62, 41.97, 49.28, 42.93, 39.98, 27.06],
        "Log Normal Mean": [50.05, 35.87, 46.23, 41.45, 51.67, 52.21, 57.91, 45.17, 39.73, 26.88],
        "Log Normal ENT": [47.77, 41.41, 46.02, 41.39, 52.25, 48.96, 56.34, 41.91, 39.68, 27.00],
        "Trunc Normal Mean": [46.25, 44.76, 46.12, 38.08, 53.18, 46.92, 46.92, 48.83, 42.09, 28.06],
        "Trunc Normal Std": [45.96, 45.35, 46.38, 37.61, 53.38, 46.41, 46.76, 44.86, 42.43, 28.68],
        "Trunc Normal Ent": [46.06, 45.01, 46.38, 37.57, 53.15, 46.67, 46.67, 38.85, 42.09, 28.11],
    },
    "COWC": {
        "Random": [65.05, 57.43, 52.30, 64.31, 65.55, 77.38, 75.44, 71.11, 78.25, 77.32],
        "SMOE Scale": [64.19, 63.02, 71.05, 62.87, 80.65, 45.16, 44.09, 43.97, 62.78, 59.49],
        "STD": [60.36, 61.95, 70.89, 64.57, 80.55, 44.12, 43.52, 44.10, 60.69, 59.73],
        "Mean": [63.82, 59.90, 73.20, 61.83, 80.54, 45.79, 59.24, 44.61, 64.02, 58.86],
        "Shannon Ent": [62.64, 63.78, 73.29, 60.99, 78.77, 46.50, 44.23, 46.42, 68.31, 57.98],
        "Log Normal Mean": [66.37, 46.05, 72.89, 60.21, 80.38, 48.98, 71.02, 46.69, 67.19, 58.16],
        "Log Normal ENT": [63.23, 62.78, 73.26, 60.99, 80.44, 45.10, 57.12, 44.92, 65.61, 58.56],
        "Trunc Normal Mean": [60.00, 63.35, 72.08, 65.62, 80.54, 42.98, 44.44, 44.15, 61.60, 59.45],
        "Trunc Normal Std": [59.52, 63.74, 71.58, 65.58, 80.54, 42.76, 43.45, 43.98, 62.07, 59.81],
        "Trunc Normal Ent": [59.79, 63.48, 71.77, 65.68, 80.59, 43.04, 43.80, 43.89, 61.79, 59.89],
    },
}
TABLE1 = {  # method: (difference ImNet, Places, COWC), (information ImNet, Places, COWC)
    "SMOE Scale": ((1.70, 0.90, 1.61), (1.13, 0.68, 1.31)),
    "STD": ((1.64, 0.83, 1.61), (1.07, 0.61, 1.30)),
    "Trunc Normal Ent": ((1.56, 0.77, 1.64), (1.00, 0.56, 1.32)),
    "Shannon Ent": ((1.61, 0.80, 1.51), (0.98, 0.59, 1.23)),
    "Trunc Normal Std": ((1.51, 0.71, 1.64), (1.00, 0.52, 1.32)),
    "Trunc Normal Mean": ((1.38, 0.67, 1.64), (0.96, 0.49, 1.32)),
    "Mean": ((1.29, 0.63, 1.42), (0.75, 0.44, 1.18)),
    "Log Normal ENT": ((1.16, 0.66, 1.44), (0.82, 0.47, 1.20)),
    "Log Normal Mean": ((1.46, 0.55, 1.09), (0.54, 0.35, 0.88)),
}
DATASETS = ("ImageNet", "Places", "COWC")


def scores_args(dataset: str, method: str):
    """``(roar, kar, z_roar, z_kar)`` as fractions."""
    row = [v / 100 for v in TABLE4[dataset][method]]
    random = [v / 100 for v in TABLE4[dataset]["Random"]]
    return row[5:], row[:5], random[5:], random[:5]


def test_difference_score_by_hand():
    # (0.6 - 0.5) + (0.7 - 0.4) + (0.8 - 0.6) + (0.5 - 0.3) = 0.1 + 0.3 + 0.2 + 0.2
    assert difference_score([0.5, 0.4], [0.8, 0.5], z_roar=[0.6, 0.7], z_kar=[0.6, 0.3]) == pytest.approx(0.8)
    assert difference_score([0.3], [0.3], z_roar=[0.3]) == 0.0


def test_information_score_by_hand():
    rho, kappa, z = 0.25, 0.8, 0.5
    expected = -rho * math.log(rho / z) - z * math.log(z / kappa)
    assert information_score([rho], [kappa], [z]) == pytest.approx(expected)
    assert information_score([rho], [kappa], [z], base=2) == pytest.approx(expected / math.log(2))
    assert information_score([0.4, 0.6], [0.4, 0.6], [0.4, 0.6]) == 0.0
    with pytest.raises(ValueError):
        information_score([0.0], [0.5], [0.5])


def test_eq8_reproduces_table1_smoe_imagenet():
    d = difference_score(*scores_args("ImageNet", "SMOE Scale"))
    assert d == pytest.approx(1.7058, abs=1e-9)
    assert math.floor(d * 100) / 100 == 1.70  # Table 1 prints 1.70 (truncated; rounding would give 1.71)


def test_eq9_reproduces_table1_smoe_imagenet_with_the_natural_log():
    args = scores_args("ImageNet", "SMOE Scale")
    assert round(information_score(*args), 2) == 1.13
    # The equation as printed (log2) does not give Table 1's number:
    assert round(information_score(*args, base=2), 2) == 1.63


@pytest.mark.parametrize("dataset", DATASETS)
def test_eq9_with_ln_reproduces_every_information_score_of_table1(dataset):
    column = DATASETS.index(dataset)
    for method, (_, information) in TABLE1.items():
        assert round(information_score(*scores_args(dataset, method)), 2) == pytest.approx(information[column], abs=0.011), method


@pytest.mark.parametrize("dataset", ["Places", "COWC"])
def test_eq8_reproduces_the_difference_scores_of_table1(dataset):
    column = DATASETS.index(dataset)
    for method, (difference, _) in TABLE1.items():
        assert difference_score(*scores_args(dataset, method)) == pytest.approx(difference[column], abs=0.011), method


def test_eq8_imagenet_rows_that_table4_supports():
    # SMOE Scale, STD and Mean follow from Table 4; five other ImageNet rows of Table 1's difference
    # column do not (e.g. Log Normal Mean: Table 4 gives 1.09, Table 1 prints 1.46), while their
    # information scores do: a transcription inconsistency in the paper, documented in docs/evaluation.md.
    for method in ("SMOE Scale", "STD", "Mean"):
        assert difference_score(*scores_args("ImageNet", method)) == pytest.approx(TABLE1[method][0][0], abs=0.011)
    assert difference_score(*scores_args("ImageNet", "Log Normal Mean")) == pytest.approx(1.09, abs=0.006)


# Table 5 (KAR 10..90 %, ROAR 10..90 %) and Table 2 (KAR, ROAR, SUM).
TABLE5 = {
    "Gradient": ([67.63, 71.45, 72.02, 72.85, 73.46], [72.94, 72.22, 70.97, 70.72, 66.75], (3.57, -3.54, 0.04)),
    "Guided Backprop": ([71.03, 72.45, 72.28, 72.69, 71.56], [72.29, 71.91, 71.18, 71.48, 70.38], (3.60, -3.57, 0.04)),
    "Integrated Grad.": ([70.38, 72.51, 72.66, 72.88, 73.32], [73.17, 72.72, 72.03, 71.68, 68.20], (3.62, -3.58, 0.03)),
    "Gradient SG2": ([63.25, 69.79, 72.20, 73.18, 73.96], [69.35, 60.28, 41.55, 29.45, 11.09], (3.52, -2.12, 1.41)),
    "Guided Backprop SG2": ([62.42, 68.96, 71.17, 72.72, 73.77], [69.74, 60.56, 52.21, 34.98, 15.53], (3.49, -2.33, 1.16)),
    "Integrated Grad. SG2": ([67.55, 68.96, 72.24, 73.09, 73.80], [70.76, 65.71, 58.34, 43.71, 29.41], (3.56, -2.68, 0.88)),
    "SMOE Scale + Prior": ([65.44, 72.14, 74.28, 74.51, 75.01], [70.40, 60.33, 48.48, 34.23, 17.72], (3.61, -2.31, 1.30)),
    "SMOE Scale + [1..5]": ([65.76, 72.60, 73.97, 74.53, 74.94], [70.28, 60.93, 48.73, 35.66, 18.01], (3.62, -2.34, 1.28)),
    "SMOE Scale + [1,1,1,1,1]": ([66.13, 72.28, 73.72, 74.52, 74.97], [71.28, 63.58, 52.85, 38.74, 19.72], (3.62, -2.46, 1.15)),
    "Normal Std + Prior": ([65.48, 72.17, 73.93, 74.62, 74.67], [69.98, 60.39, 48.75, 34.63, 18.13], (3.61, -2.32, 1.29)),
    "Trunc Normal Ent + Prior": ([65.45, 72.38, 74.10, 74.40, 74.75], [69.85, 60.08, 48.05, 34.32, 18.37], (3.61, -2.31, 1.30)),
}


def test_table2_smoe_prior_is_the_plain_sum_of_table5():
    kar, roar, total = kar_roar_sums([v / 100 for v in TABLE5["SMOE Scale + Prior"][0]], [v / 100 for v in TABLE5["SMOE Scale + Prior"][1]])
    assert (kar, roar, total) == pytest.approx((3.6138, -2.3116, 1.3022), abs=1e-9)
    assert (round(kar, 2), round(roar, 2), round(total, 2)) == (3.61, -2.31, 1.30)


SWAPPED_SUMS = {"Guided Backprop": 0.03, "Integrated Grad.": 0.04}
"""Table 2 prints SUM 0.04 for Guided Backprop and 0.03 for Integrated Gradients; their Table 5 rows
(and Table 2's own KAR and ROAR columns: 3.60 - 3.57, 3.62 - 3.58) give 0.03 and 0.04: swapped in print."""


@pytest.mark.parametrize("method", list(TABLE5))
def test_every_table2_row_is_the_sum_of_its_table5_row(method):
    kar, roar, (kar_sum, roar_sum, total) = TABLE5[method]
    got = kar_roar_sums([v / 100 for v in kar], [v / 100 for v in roar])
    # Plain sums, not relative to the random row (whose sums, 3.43 and -3.43, would shift every row).
    assert got[:2] == pytest.approx((kar_sum, roar_sum), abs=0.0051)
    assert got[2] == pytest.approx(SWAPPED_SUMS.get(method, total), abs=0.0051)


def test_auc_trapezoid():
    assert auc([1.0, 1.0]) == 1.0
    assert auc([1.0, 0.0]) == 0.5
    assert auc([0.0, 1.0, 0.0]) == 0.5
    assert auc([1.0, 0.5, 0.0, 0.0, 0.0]) == pytest.approx(0.25 * (0.75 + 0.25))
    with pytest.raises(ValueError):
        auc([1.0])
