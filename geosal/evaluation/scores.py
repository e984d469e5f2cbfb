"""Scores of the paper (Eqs. 8 and 9, Table 2) and of the perturbation curves.

All accuracies are fractions in [0, 1] (the paper's tables print percentages;
divide them by 100).

Conventions, checked against the paper's own numbers in the tests:

- :func:`difference_score` is Eq. 8 exactly:
  ``D = sum_p (z_p - rho_p) + sum_q (kappa_q - z_q)``. With Table 4's ImageNet
  rows (Random, SMOE Scale) it gives 1.7058, printed 1.70 in Table 1 (the
  table truncates; rounding would give 1.71).
- :func:`information_score` is Eq. 9 *as printed*, signs included,
  ``I = -sum_p rho_p log(rho_p / z_p) - sum_q z_q log(z_q / kappa_q)``, but
  with the NATURAL logarithm. The printed ``log2`` gives 1.63 for SMOE Scale on
  ImageNet; the natural log gives 1.1305, Table 1's 1.13, and reproduces every
  information score of Table 1 (all nine statistics on all three datasets) to
  two decimals. So Table 1 was computed with ``ln``; the score is in nats.
  (``base=2`` gives the printed equation literally.)
- Table 2's columns are plain sums of Table 5's accuracies, not differences
  from the random baseline: ``KAR = sum_p kappa_p``, ``ROAR = -sum_p rho_p``,
  ``SUM = KAR + ROAR`` (e.g. SMOE Scale + prior weights: 3.6138, -2.3116,
  1.3022, printed 3.61, -2.31, 1.30).
- The ``z`` of Eqs. 8 and 9 are the random maps' accuracies: per layer in
  Table 1 (the ``layers`` protocol), per percentage when the same formulas are
  applied to the retraining protocol (our extension, reported as "vs random").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _arrays(*values: Sequence[float]) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(f"score inputs must have the same length, got {[a.shape for a in arrays]}")
    return arrays


def difference_score(
    roar: Sequence[float], kar: Sequence[float], z_roar: Sequence[float], z_kar: Sequence[float] | None = None
) -> float:
    """Eq. 8: ``sum (z_roar - roar) + sum (kar - z_kar)``.

    Args:
        roar: ROAR accuracies ``rho`` of the method (one per layer or percentage).
        kar: KAR accuracies ``kappa``.
        z_roar, z_kar: the random map's ROAR and KAR accuracies at the same
            layers / percentages (Table 4 has separate random rows for KAR and
            ROAR); ``z_kar`` defaults to ``z_roar``.

    Returns:
        Larger is better; 0 means "as good as a random map".
    """
    z_kar = z_roar if z_kar is None else z_kar
    rho, kappa, zr, zk = _arrays(roar, kar, z_roar, z_kar)
    return float(np.sum(zr - rho) + np.sum(kappa - zk))


def information_score(
    roar: Sequence[float], kar: Sequence[float], z_roar: Sequence[float], z_kar: Sequence[float] | None = None,
    base: float = math.e,
) -> float:
    """Eq. 9: ``-sum rho log(rho / z_roar) - sum z_kar log(z_kar / kappa)``.

    Natural logarithm by default: that is what reproduces Table 1 (see the
    module docstring); ``base=2`` evaluates the equation with the printed
    ``log2``. Accuracies must be > 0.

    Returns:
        Larger is better; 0 for the random map itself.
    """
    z_kar = z_roar if z_kar is None else z_kar
    rho, kappa, zr, zk = _arrays(roar, kar, z_roar, z_kar)
    if (rho <= 0).any() or (kappa <= 0).any() or (zr <= 0).any() or (zk <= 0).any():
        raise ValueError("Eq. 9 needs accuracies > 0 (a logarithm of 0)")
    value = -np.sum(rho * np.log(rho / zr)) - np.sum(zk * np.log(zk / kappa))
    return float(value / math.log(base))


def kar_roar_sums(kar: Sequence[float], roar: Sequence[float]) -> tuple[float, float, float]:
    """Table 2: ``(KAR, ROAR, SUM) = (sum kappa, -sum rho, sum kappa - sum rho)``
    over the percentages of Table 5 (10, 30, 50, 70, 90 %)."""
    kappa, rho = np.asarray(kar, dtype=np.float64), np.asarray(roar, dtype=np.float64)
    k, r = float(kappa.sum()), -float(rho.sum())
    return k, r, k + r


def auc(values: Sequence[float], fractions: Sequence[float] | None = None) -> float:
    """Area under a curve by the trapezoidal rule over ``fractions`` in [0, 1]
    (default: evenly spaced from 0 to 1), as in Petsiuk et al.'s RISE code."""
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or len(y) < 2:
        raise ValueError("auc needs at least two points")
    x = np.linspace(0.0, 1.0, len(y)) if fractions is None else np.asarray(fractions, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)
