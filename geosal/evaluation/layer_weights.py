"""Layer weights of SMOE Scale learned from the ``layers`` protocol, as the paper derived its prior.

The paper's "prior layer weights" [0.18, 0.15, 0.37, 0.40, 0.72] weight each
scale by how faithful its map alone was (Section 3.2: "based on the expected
accuracy given our results when we computed Table 1"). The rule used here:
each layer's difference score (Eq. 8) against that layer's random map,

    D_k = (z_roar_k - rho_k) + (kappa_k - z_kar_k),

clipped at 0 (a layer no better than random gets no weight) and divided by
the largest. Applied to the paper's own ImageNet rows of Table 4 it gives
D / 90 = [0.21, 0.19, 0.37, 0.40, 0.72]: the printed prior at L3-L5 to two
decimals and within 0.04 at L1-L2 (checked in the tests), so it is the
paper's derivation up to a scale, which Eq. 3 divides out.

The weights are derived from one half of the validation images (the
*derivation* images, even image ids) and the weightings are compared on the
other half (the *held-apart* images, odd ids), so the learned weights are
not scored on the images they were fitted to. Accuracies are averaged over
the retraining seeds of the ``layers`` protocol.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from geosal.evaluation.catalog import SCALES
from geosal.evaluation.errors import EvaluationError


def derivation_images(ids: Iterable[int]) -> np.ndarray:
    """Boolean mask ``[N]`` of the derivation images among validation ``ids`` (even ids)."""
    return np.asarray(list(ids), dtype=np.int64) % 2 == 0


def cell_accuracy(rows: list[dict], method: str, mode: str, images: np.ndarray | None = None,
                  seeds: set[int] | None = None) -> float:
    """Accuracy (fraction in [0, 1]) of ``method`` in ``mode`` averaged over its seeds (only ``seeds`` when
    given), over the validation images selected by the boolean mask ``images`` (all when None).

    Raises:
        EvaluationError: no finished cell of ``method`` / ``mode`` (or one without per-image outcomes).
    """
    found = [r for r in rows if r["method"] == method and r["mode"] == mode and (seeds is None or r.get("seed", 0) in seeds)]
    if not found:
        raise EvaluationError(f"the layers protocol has no finished {mode} cell of {method}: run "
                              f"'geosal evaluate --protocol layers' first")
    values = []
    for row in found:
        if "correct" not in row:
            raise EvaluationError(f"the layers cell {method} {mode} has no per-image outcomes (made by an older geosal): "
                                  f"delete it and rerun the layers protocol")
        correct = np.asarray(row["correct"], dtype=np.float64)
        values.append(correct[images].mean() if images is not None else correct.mean())
    return float(np.mean(values))


def layer_scores(rows: list[dict], statistic: str = "smoe", images: np.ndarray | None = None) -> list[float]:
    """Eq. 8 per layer: ``D_k`` of ``<statistic>_L<k>`` against ``random_L<k>``, k = 1..5 (accuracy units,
    fractions), over the retraining seeds every one of these cells has (an unfinished seed is left out)."""
    methods = [f"{prefix}_L{layer}" for prefix in (statistic, "random") for layer in range(1, SCALES + 1)]
    seed_sets = [{r.get("seed", 0) for r in rows if r["method"] == m and r["mode"] == mode} for m in methods
                 for mode in ("kar", "roar")]
    seeds = set.intersection(*seed_sets) if all(seed_sets) else None  # None: a cell is missing, reported below
    scores = []
    for layer in range(1, SCALES + 1):
        method, random = f"{statistic}_L{layer}", f"random_L{layer}"
        scores.append((cell_accuracy(rows, random, "roar", images, seeds) - cell_accuracy(rows, method, "roar", images, seeds))
                      + (cell_accuracy(rows, method, "kar", images, seeds) - cell_accuracy(rows, random, "kar", images, seeds)))
    return scores


def weights_from_scores(scores: list[float]) -> tuple[float, ...]:
    """``max(D_k, 0) / max_j D_j``, rounded to 3 decimals: weights in [0, 1], the best layer 1.

    Raises:
        EvaluationError: no layer scores above random.
    """
    clipped = np.clip(np.asarray(scores, dtype=np.float64), 0, None)
    if clipped.max() <= 0:
        raise EvaluationError(f"no layer's map is more faithful than its random map (D = {np.round(scores, 3).tolist()}): "
                              "no weights can be learned")
    return tuple(round(float(w), 3) for w in clipped / clipped.max())


def learned_weights(rows: list[dict], statistic: str = "smoe") -> tuple[tuple[float, ...], list[float]]:
    """The learned weights and the per-layer scores they come from, on the derivation images.

    Args:
        rows: the ``layers`` protocol's cells (with ``correct`` and ``val_ids``).
    """
    if not rows:
        raise EvaluationError("the layers protocol has no finished cells: run 'geosal evaluate --protocol layers' first")
    images = derivation_images(rows[0]["val_ids"])
    if not images.any():
        raise EvaluationError("no derivation (even id) validation image to learn the layer weights from")
    scores = layer_scores(rows, statistic, images)
    return weights_from_scores(scores), scores
