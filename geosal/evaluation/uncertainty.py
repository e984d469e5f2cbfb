"""Uncertainty of the faithfulness results: a paired, two-level bootstrap (numpy only).

What varies between two runs of the same experiment is (1) the retraining: its
seed sets the initial weights and the batch order, and (2) the validation
images the accuracies are measured on. The bootstrap here resamples both:

- **Seeds as blocks.** A retraining seed is drawn as a whole: all cells of a
  method retrained with seed ``s`` come together (they share the seed's initial
  weights and batch order, so they are correlated).
- **Images.** The validation images are drawn with replacement, and every cell
  and every method uses the SAME image draw in a replicate (the outcomes are
  paired by image: an image that is hard for one method tends to be hard for
  all).
- **Paired seeds.** The seed draw of a replicate depends only on the set of
  seeds it draws from, so two methods with the same seeds get the same seed
  draw; a comparison of two methods uses the seeds both have.

Each replicate recomputes every statistic from the resampled outcomes. The
point estimate is always the plain statistic of the data (no bias
correction), the interval the 95 % percentile interval of the replicates, with
``B = 2000`` replicates of a seeded generator by default, so the output is
deterministic; a pairwise table of many methods gets more (:func:`replicates_for`),
so that the bootstrap p-value's floor does not hide a clear difference.

Shapes, by name:

- ``correct``: ``[seeds, images]`` 0/1 per validation image of one retraining
  cell (``[images]`` for a protocol without retraining, e.g. ROAD), in the
  run's fixed image order; ``areas``: ``[images]`` deletion / insertion AUCs in
  [0, 1].
- a *track*: ``[1 + B]`` float64, entry 0 the point estimate and entries ``1..B``
  the replicates; ``[1]`` (point only) when the data have no per-image outcomes
  (cells written before they were recorded): such a statistic has no interval,
  and a statistic that needs it has none either.

The statistics of the retraining protocol follow :mod:`geosal.evaluation.scores`
(Table 2: ``KAR = sum_p kappa_p``, ``ROAR = -sum_p rho_p``, ``SUM = KAR + ROAR``;
Eq. 9 with the natural log for the information score against the random map,
evaluated per replicate with :func:`~geosal.evaluation.scores.information_score`).

Pairwise comparisons give the difference ``first - second`` with its interval,
a two-sided bootstrap p-value ``p = min(1, 2 min(P(d* <= 0), P(d* >= 0)))``,
each probability ``(count + 1) / (B + 1)``, and the Holm-Bonferroni adjustment
over the comparisons of one table (:func:`holm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from geosal.evaluation.scores import information_score

REPLICATES = 2000
"""Bootstrap replicates ``B`` by default."""

SEED = 0
"""Seed of the bootstrap's generator by default."""

LEVEL = 0.95
"""Coverage of the percentile intervals."""

ALPHA = 0.05
"""Level of the significance column of the pairwise tables (after Holm)."""

# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95 % percentile bootstrap interval.

    Attributes:
        value: the point estimate (the plain statistic), or None when it cannot be computed.
        low, high: the interval, or None (point estimate only: no per-image outcomes).
        seeds: retraining seeds behind it (0: a protocol without retraining). With 1 seed
            the interval covers the images only, not the retraining noise (:attr:`image_only`).
        images: images resampled (0 without an interval).
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    seeds: int = 0
    images: int = 0

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def image_only(self) -> bool:
        """An interval over the images alone: one retraining seed."""
        return self.has_interval and self.seeds == 1


@dataclass(frozen=True)
class Comparison:
    """``statistic(first) - statistic(second)`` over the same replicates.

    Attributes:
        p: two-sided bootstrap p-value, None without an interval.
        p_holm: ``p`` adjusted by Holm-Bonferroni over the comparisons of its table.
    """

    statistic: str
    first: str
    second: str
    difference: Estimate
    p: float | None = None
    p_holm: float | None = None

    @property
    def significant(self) -> bool | None:
        """Adjusted p below :data:`ALPHA`; None when untested."""
        return None if self.p_holm is None else self.p_holm < ALPHA


# --- the plain tools ---------------------------------------------------------------------------------


def percentile_interval(replicates: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The ``level`` percentile interval of the finite ``replicates``; None when there are none."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_p(differences: Sequence[float]) -> float:
    """Two-sided bootstrap p-value of ``differences`` (the replicates ``d*``) against 0.

    ``p = min(1, 2 min((#(d* <= 0) + 1) / (B + 1), (#(d* >= 0) + 1) / (B + 1)))`` over the finite
    replicates: 1 when every replicate is 0, at least ``2 / (B + 1)``.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise ValueError("no finite replicate")
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni step-down adjustment, in the order given.

    With the ``m`` p-values that are not None sorted ``p_(1) <= .. <= p_(m)``, the adjusted
    ``p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``: never below the raw p, monotone in it,
    and rejecting at ``alpha`` exactly what Holm's procedure rejects. None stays None (and does not count in ``m``).
    """
    tested = [(p, index) for index, p in enumerate(pvalues) if p is not None]
    m = len(tested)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(tested, key=lambda pair: pair[0])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def replicates_for(methods: int, least: int = REPLICATES, alpha: float = ALPHA) -> int:
    """Replicates ``B`` that let a pairwise table of ``methods`` reject a clear difference after Holm.

    The bootstrap p-value cannot go below ``2 / (B + 1)`` (:func:`bootstrap_p`) and Holm multiplies the
    smallest by the ``m = methods (methods - 1) / 2`` comparisons, so with too few replicates no
    difference can be significant however clear (``B = 2000``, 12 methods: at least 0.066 > 5 %).
    Returns the smallest ``B >= least`` whose floor ``2 m / (B + 1)`` is at most ``alpha / 5``.
    """
    comparisons = methods * (methods - 1) // 2
    return max(least, math.ceil(10 * comparisons / alpha) - 1)


def with_holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """``comparisons`` with :attr:`Comparison.p_holm` adjusted over all of them (one table)."""
    adjusted = holm([c.p for c in comparisons])
    return [replace(c, p_holm=p) for c, p in zip(comparisons, adjusted)]


def _counts(draws: np.ndarray, size: int) -> np.ndarray:
    """``[B, k]`` indices in ``0..size-1`` -> ``[B, size]`` how often each index is drawn (float64)."""
    rows = draws.shape[0]
    flat = (draws + size * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * size).reshape(rows, size).astype(np.float64)


def _seed_entropy(seeds: Sequence[int]) -> list[int]:
    """Non-negative integers naming a seed set (negative seeds folded in), for ``np.random.default_rng``."""
    return [len(seeds)] + [2 * abs(int(s)) + (int(s) < 0) for s in seeds]


class Resampler:
    """The replicate draws of one protocol: one image draw for everything, one seed draw per seed set.

    Args:
        images: validation images ``n`` (the length of every per-image outcome).
        replicates: ``B``.
        seed: seed of the generator (the draws are a function of it, ``n``, ``B`` and the seed set).

    Attributes:
        image_weights: ``[1 + B, n]``: row 0 all ones (the plain mean), row ``b`` how often each
            image is drawn in replicate ``b`` (each row sums to ``n``).
    """

    def __init__(self, images: int, replicates: int = REPLICATES, seed: int = SEED):
        if images < 1 or replicates < 1:
            raise ValueError(f"a bootstrap needs images and replicates, got {images} and {replicates}")
        self.images, self.replicates, self.seed = int(images), int(replicates), int(seed)
        draws = np.random.default_rng([self.seed, 0]).integers(0, self.images, size=(self.replicates, self.images))
        self.image_weights = np.vstack([np.ones((1, self.images)), _counts(draws, self.images)])
        self._seed_weights: dict[tuple[int, ...], np.ndarray] = {}

    def seed_weights(self, seeds: Sequence[int]) -> np.ndarray:
        """``[1 + B, k]`` how often each of the ``k`` seeds is drawn (row 0 all ones); the same for the same seeds."""
        key = tuple(int(s) for s in seeds)
        if key not in self._seed_weights:
            rng = np.random.default_rng([self.seed, 1, *_seed_entropy(key)])
            draws = rng.integers(0, len(key), size=(self.replicates, len(key)))
            self._seed_weights[key] = np.vstack([np.ones((1, len(key))), _counts(draws, len(key))])
        return self._seed_weights[key]

    def track(self, outcomes: np.ndarray, seeds: Sequence[int] | None = None) -> np.ndarray:
        """The mean of ``outcomes`` and its replicates, ``[1 + B]``.

        Args:
            outcomes: ``[images]`` (no seed level) or ``[k, images]``, one row per seed of ``seeds``.
            seeds: the ``k`` retraining seeds of the rows (drawn as blocks when ``k > 1``).

        Returns:
            Entry 0 the plain mean over seeds and images; entry ``b`` the mean over the seeds and
            images drawn in replicate ``b`` (each drawn seed weighted by how often it is drawn).
        """
        x = np.asarray(outcomes, dtype=np.float64)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.images:
            raise ValueError(f"outcomes of shape {np.shape(outcomes)} do not have {self.images} images")
        per_seed = self.image_weights @ x.T / self.images  # [1 + B, k]
        if x.shape[0] == 1:
            return per_seed[:, 0]
        if seeds is None or len(seeds) != x.shape[0]:
            raise ValueError(f"{x.shape[0]} rows of outcomes need as many seeds, got {seeds}")
        return (self.seed_weights(seeds) * per_seed).sum(axis=1) / x.shape[0]


# --- tracks -> estimates -------------------------------------------------------------------------------


def _point_only(value: float) -> np.ndarray:
    return np.array([float(value)])


def _align(*tracks: np.ndarray) -> list[np.ndarray]:
    """Point only as soon as one of ``tracks`` is (a constant would fake an interval)."""
    if any(t.size == 1 for t in tracks):
        return [t[:1] for t in tracks]
    return list(tracks)


def _total(tracks: Sequence[np.ndarray]) -> np.ndarray:
    """The sum of ``tracks`` (point only if one is)."""
    return np.sum(_align(*tracks), axis=0)


def _split(tracks: Sequence[np.ndarray], parts: int) -> list[list[np.ndarray]]:
    """``tracks`` cut into ``parts`` lists of equal length, in order."""
    size = len(tracks) // parts
    return [list(tracks[i * size:(i + 1) * size]) for i in range(parts)]


def estimate(track: np.ndarray, seeds: int = 0, images: int = 0) -> Estimate:
    """The :class:`Estimate` of a track (``[1 + B]`` or ``[1]``).

    The bounds are the percentiles of the finite replicates (a replicate can be undefined, e.g. a
    logarithm of an accuracy of 0). A point estimate outside its interval by rounding only
    (1e-9 relative: the replicates are sums in another order) moves the bound onto it.
    """
    value = float(track[0])
    if not math.isfinite(value):
        return Estimate(None, seeds=seeds)
    bounds = percentile_interval(track[1:]) if track.size > 1 else None
    if bounds is None:
        return Estimate(value, seeds=seeds)
    low, high = bounds
    tolerance = 1e-9 * max(1.0, abs(value))
    low = value if value < low <= value + tolerance else low
    high = value if value - tolerance <= high < value else high
    return Estimate(value, low, high, seeds, images)


def _comparison(statistic: str, first: str, second: str, a: np.ndarray, b: np.ndarray, seeds: int, images: int) -> Comparison:
    a, b = _align(a, b)
    difference = a - b
    p = bootstrap_p(difference[1:]) if difference.size > 1 and np.isfinite(difference[0]) else None
    return Comparison(statistic, first, second, estimate(difference, seeds, images if p is not None else 0), p)


def pairwise(
    statistic: str, names: Sequence[str], tracks: Callable[[str, str], tuple[np.ndarray, np.ndarray, int] | None], images: int = 0,
) -> list[Comparison]:
    """Every pair ``(first, second)`` of ``names`` (``first`` earlier in ``names``), Holm-adjusted together.

    Args:
        tracks: ``(first, second)`` -> their tracks of ``statistic`` over the same replicates and the
            number of seeds behind them, or None when they cannot be compared (no shared seed).
    """
    rows = []
    for first, second in combinations(names, 2):
        got = tracks(first, second)
        if got is None:
            rows.append(Comparison(statistic, first, second, Estimate(None)))
        else:
            rows.append(_comparison(statistic, first, second, got[0], got[1], got[2], images))
    return with_holm(rows)


def _information_track(rho: list[np.ndarray], kappa: list[np.ndarray], z_roar: list[np.ndarray], z_kar: list[np.ndarray]) -> np.ndarray:
    """Eq. 9 (:func:`~geosal.evaluation.scores.information_score`, natural log) per replicate; NaN where an accuracy is 0."""
    tracks = _align(*rho, *kappa, *z_roar, *z_kar)
    stacked = np.stack(tracks)  # [4F, T]
    f = len(rho)
    out = np.full(stacked.shape[1], np.nan)
    for t in range(stacked.shape[1]):
        column = stacked[:, t]
        try:
            out[t] = information_score(column[:f], column[f:2 * f], column[2 * f:3 * f], column[3 * f:])
        except ValueError:  # an accuracy of 0 in this replicate: log undefined
            continue
    return out


# --- the retraining protocols (KAR / ROAR, layers) -------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """One retraining cell (a method, a mode, a fraction) over its seeds.

    Attributes:
        seeds: the retraining seeds, sorted.
        accuracy: the stored accuracy of each seed, in [0, 1].
        correct: ``[len(seeds), images]`` 0/1 per validation image in the run's fixed order, or None
            when a seed has none (then the cell is a point estimate: the mean of ``accuracy``).
    """

    seeds: tuple[int, ...]
    accuracy: tuple[float, ...]
    correct: np.ndarray | None = None


class Retraining:
    """The paired bootstrap of one retraining protocol.

    Args:
        cells: method -> cell key (e.g. ``("kar", 0.1)``) -> :class:`Outcomes`.
        resampler: the draws (None when no cell has per-image outcomes: point estimates only).
    """

    def __init__(self, cells: Mapping[str, Mapping[Hashable, Outcomes]], resampler: Resampler | None):
        self.cells, self.resampler = cells, resampler
        self.images = resampler.images if resampler is not None else 0
        self._tracks: dict[tuple, np.ndarray] = {}

    def seeds(self, *methods: str, keys: Sequence[Hashable] | None = None) -> tuple[int, ...]:
        """The seeds every cell of ``methods`` has (only the cells ``keys`` when given)."""
        common: set[int] | None = None
        for method in methods:
            for key, cell in self.cells.get(method, {}).items():
                if keys is None or key in keys:
                    common = set(cell.seeds) if common is None else common & set(cell.seeds)
        return tuple(sorted(common or ()))

    def track(self, method: str, key: Hashable, seeds: Sequence[int]) -> np.ndarray:
        """The accuracy of one cell over ``seeds`` (a subset of its seeds): ``[1 + B]``, or ``[1]`` without per-image outcomes."""
        seeds = tuple(seeds)
        cache = (method, key, seeds)
        if cache not in self._tracks:
            cell = self.cells[method][key]
            rows = [cell.seeds.index(s) for s in seeds]
            if cell.correct is None or self.resampler is None:
                self._tracks[cache] = _point_only(np.mean([cell.accuracy[r] for r in rows]))
            else:
                self._tracks[cache] = self.resampler.track(cell.correct[rows], seeds)
        return self._tracks[cache]

    def estimate(self, track: np.ndarray, seeds: Sequence[int]) -> Estimate:
        return estimate(track, len(seeds), self.images if track.size > 1 else 0)

    def cell(self, method: str, key: Hashable) -> Estimate:
        """The accuracy of a cell over all its seeds."""
        seeds = self.cells[method][key].seeds
        return self.estimate(self.track(method, key, seeds), seeds)

    def per_seed(self, method: str, key: Hashable) -> dict[int, Estimate]:
        """The accuracy of each retraining of a cell alone (an interval over images only)."""
        return {s: self.estimate(self.track(method, key, (s,)), (s,)) for s in self.cells[method][key].seeds}


def _kar_roar_tracks(boot: Retraining, method: str, fractions: Sequence[float], seeds: Sequence[int]) -> dict[str, np.ndarray]:
    kar = _total([boot.track(method, ("kar", f), seeds) for f in fractions])
    roar = -_total([boot.track(method, ("roar", f), seeds) for f in fractions])
    kar, roar = _align(kar, roar)
    return {"kar": kar, "roar": roar, "sum": kar + roar}


def kar_roar_complete(boot: Retraining, method: str, fractions: Sequence[float]) -> bool:
    """``method`` has a KAR and a ROAR cell at every fraction, with at least one seed common to all."""
    cells = boot.cells.get(method, {})
    keys = [(mode, f) for mode in ("kar", "roar") for f in fractions]
    return bool(fractions) and all(k in cells for k in keys) and bool(boot.seeds(method, keys=keys))


def kar_roar_scores(boot: Retraining, methods: Sequence[str], fractions: Sequence[float], random: str = "random") -> dict[str, dict]:
    """Table 2's sums and the scores against the random map, with intervals, for every complete method.

    Returns:
        method -> ``kar``, ``roar``, ``sum`` (Table 2, over the seeds common to all the method's cells),
        ``difference`` (Eq. 8) and ``information`` (Eq. 9) against ``random`` over the seeds the method
        and ``random`` share (None when ``random`` is incomplete or they share no seed); each an :class:`Estimate`.
    """
    keys = [(mode, f) for mode in ("kar", "roar") for f in fractions]
    scores = {}
    for method in methods:
        if not kar_roar_complete(boot, method, fractions):
            continue
        seeds = boot.seeds(method, keys=keys)
        sums = _kar_roar_tracks(boot, method, fractions, seeds)
        entry: dict[str, Estimate | None] = {k: boot.estimate(v, seeds) for k, v in sums.items()}
        entry["difference"] = entry["information"] = None
        shared = boot.seeds(method, random, keys=keys)
        if kar_roar_complete(boot, random, fractions) and shared:
            rho, kappa, z_roar, z_kar = _split(_align(*(boot.track(m, (mode, f), shared) for m, mode in
                                                        ((method, "roar"), (method, "kar"), (random, "roar"), (random, "kar"))
                                                        for f in fractions)), 4)
            difference = _total(z_roar) - _total(rho) + _total(kappa) - _total(z_kar)
            entry["difference"] = boot.estimate(difference, shared)
            entry["information"] = boot.estimate(_information_track(rho, kappa, z_roar, z_kar), shared)
        scores[method] = entry
    return scores


def kar_roar_comparisons(boot: Retraining, methods: Sequence[str], fractions: Sequence[float],
                         statistics: Sequence[str] = ("sum", "kar", "roar")) -> dict[str, list[Comparison]]:
    """Pairwise differences of KAR, ROAR and SUM between the complete ``methods`` (in that order), over the seeds each pair shares.

    Returns:
        statistic -> its table of :class:`Comparison` (Holm over the table).
    """
    keys = [(mode, f) for mode in ("kar", "roar") for f in fractions]
    complete = [m for m in methods if kar_roar_complete(boot, m, fractions)]
    cache: dict[tuple, dict[str, np.ndarray]] = {}

    def tracks_of(method: str, seeds: tuple[int, ...]) -> dict[str, np.ndarray]:
        if (method, seeds) not in cache:
            cache[method, seeds] = _kar_roar_tracks(boot, method, fractions, seeds)
        return cache[method, seeds]

    tables = {}
    for statistic in statistics:
        def pair(first: str, second: str, statistic: str = statistic):
            shared = boot.seeds(first, second, keys=keys)
            if not shared:
                return None
            return tracks_of(first, shared)[statistic], tracks_of(second, shared)[statistic], len(shared)

        tables[statistic] = pairwise(statistic, complete, pair, boot.images)
    return tables


def layer_scores(boot: Retraining, prefixes: Sequence[str], layers: Sequence[int], kar_key: Hashable, roar_key: Hashable,
                 random: str = "random") -> tuple[dict[str, dict], dict[str, list[Estimate | None]]]:
    """Eqs. 8 and 9 per statistic of the per-layer protocol (single-scale methods ``<prefix>_L<k>``), with intervals.

    Returns:
        ``(scores, per_layer)``: prefix -> ``difference`` and ``information`` :class:`Estimate` for
        prefixes with every layer's cells (``random`` too) and a shared seed; prefix -> per layer
        ``(z_roar - roar) + (kar - z_kar)`` (None where a cell is missing).
    """
    scores, per_layer = {}, {}
    for prefix in prefixes:
        if prefix == random:
            continue
        layer_values: list[Estimate | None] = []
        for k in layers:
            method, z = f"{prefix}_L{k}", f"{random}_L{k}"
            cells, z_cells = boot.cells.get(method, {}), boot.cells.get(z, {})
            seeds = boot.seeds(method, z)
            if not (kar_key in cells and roar_key in cells and kar_key in z_cells and roar_key in z_cells and seeds):
                layer_values.append(None)
                continue
            zr, rr, kk, zk = (boot.track(m, key, seeds) for m, key in ((z, roar_key), (method, roar_key), (method, kar_key), (z, kar_key)))
            zr, rr, kk, zk = _align(zr, rr, kk, zk)
            layer_values.append(boot.estimate((zr - rr) + (kk - zk), seeds))
        per_layer[prefix] = layer_values
        methods = [f"{prefix}_L{k}" for k in layers] + [f"{random}_L{k}" for k in layers]
        seeds = boot.seeds(*methods)
        if None in layer_values or not seeds:
            continue
        rho, kappa, z_roar, z_kar = _split(_align(*(boot.track(f"{m}_L{k}", key, seeds) for m, key in
                                                    ((prefix, roar_key), (prefix, kar_key), (random, roar_key), (random, kar_key))
                                                    for k in layers)), 4)
        difference = _total(z_roar) - _total(rho) + _total(kappa) - _total(z_kar)
        scores[prefix] = {"difference": boot.estimate(difference, seeds),
                          "information": boot.estimate(_information_track(rho, kappa, z_roar, z_kar), seeds)}
    return scores, per_layer


# --- ROAD and deletion / insertion (no retraining: images only) ---------------------------------------------


def _image_track(values: np.ndarray | float, resampler: Resampler | None) -> np.ndarray:
    """Per-image outcomes ``[images]`` -> their mean's track; a float (the stored mean alone) -> point only."""
    if isinstance(values, np.ndarray) and resampler is not None:
        return resampler.track(values)
    return _point_only(float(np.mean(values)))


def _image_estimate(track: np.ndarray, resampler: Resampler | None) -> Estimate:
    return estimate(track, 0, resampler.images if resampler is not None and track.size > 1 else 0)


def image_estimate(values: np.ndarray | float, resampler: Resampler | None) -> Estimate:
    """The mean of per-image outcomes ``[images]`` with its interval over images (a float: point estimate only)."""
    return _image_estimate(_image_track(values, resampler), resampler)


@dataclass(frozen=True)
class RoadStatistics:
    """ROAD's accuracies with intervals over the images.

    Attributes:
        accuracy: method -> ``(order, fraction)`` -> accuracy.
        means: method -> ``(MoRF mean, LeRF mean, LeRF - MoRF)`` over the fractions (paired over
            images), or three None unless the method has every cell.
        comparisons: pairwise differences of LeRF - MoRF (Holm over the table).
    """

    accuracy: dict[str, dict[tuple[str, float], Estimate]]
    means: dict[str, tuple[Estimate | None, Estimate | None, Estimate | None]]
    comparisons: list[Comparison]


def road_statistics(cells: Mapping[str, Mapping[tuple[str, float], np.ndarray | float]], fractions: Sequence[float],
                    resampler: Resampler | None, order: Sequence[str] | None = None) -> RoadStatistics:
    """ROAD's :class:`RoadStatistics`.

    Args:
        cells: method -> ``(order, fraction)`` -> 0/1 per image ``[images]`` (or the stored accuracy alone).
        fractions: the fractions every complete method has.
        order: the methods in the order of the pairwise table (default: best LeRF - MoRF first).
    """
    tracks = {m: {key: _image_track(v, resampler) for key, v in c.items()} for m, c in cells.items()}
    accuracy = {m: {key: _image_estimate(t, resampler) for key, t in c.items()} for m, c in tracks.items()}
    means, gaps = {}, {}
    for method, c in tracks.items():
        if not fractions or any((o, f) not in c for o in ("morf", "lerf") for f in fractions):
            means[method] = (None, None, None)
            continue
        aligned = _align(*(c["morf", f] for f in fractions), *(c["lerf", f] for f in fractions))
        morf = np.mean(aligned[:len(fractions)], axis=0)
        lerf = np.mean(aligned[len(fractions):], axis=0)
        gaps[method] = lerf - morf
        means[method] = tuple(_image_estimate(t, resampler) for t in (morf, lerf, lerf - morf))
    names = [m for m in (order or sorted(gaps, key=lambda m: -gaps[m][0])) if m in gaps]
    images = resampler.images if resampler is not None else 0
    comparisons = pairwise("LeRF - MoRF", names, lambda a, b: (gaps[a], gaps[b], 0), images)
    return RoadStatistics(accuracy, means, comparisons)


@dataclass(frozen=True)
class DeletionStatistics:
    """Deletion / insertion areas with intervals over the images.

    Attributes:
        area: method -> kind (``deletion`` / ``insertion``) -> mean AUC.
        gap: method -> insertion - deletion (paired over images), for methods with both.
        comparisons: pairwise differences of insertion - deletion (Holm over the table).
    """

    area: dict[str, dict[str, Estimate]]
    gap: dict[str, Estimate]
    comparisons: list[Comparison]


def deletion_statistics(cells: Mapping[str, Mapping[str, np.ndarray | float]], resampler: Resampler | None,
                        order: Sequence[str] | None = None) -> DeletionStatistics:
    """Deletion's :class:`DeletionStatistics`.

    Args:
        cells: method -> kind -> per-image AUC ``[images]`` in [0, 1] (or the stored mean alone).
        order: the methods in the order of the pairwise table (default: best insertion - deletion first).
    """
    tracks = {m: {kind: _image_track(v, resampler) for kind, v in c.items()} for m, c in cells.items()}
    area = {m: {kind: _image_estimate(t, resampler) for kind, t in c.items()} for m, c in tracks.items()}
    gaps = {}
    for method, c in tracks.items():
        if "deletion" in c and "insertion" in c:
            insertion, deletion = _align(c["insertion"], c["deletion"])
            gaps[method] = insertion - deletion
    names = [m for m in (order or sorted(gaps, key=lambda m: -gaps[m][0])) if m in gaps]
    images = resampler.images if resampler is not None else 0
    comparisons = pairwise("insertion - deletion", names, lambda a, b: (gaps[a], gaps[b], 0), images)
    return DeletionStatistics(area, {m: _image_estimate(t, resampler) for m, t in gaps.items()}, comparisons)


__all__ = [
    "ALPHA", "LEVEL", "REPLICATES", "SEED", "Comparison", "DeletionStatistics", "Estimate", "Outcomes", "Resampler",
    "Retraining", "RoadStatistics", "bootstrap_p", "deletion_statistics", "estimate", "holm", "image_estimate", "kar_roar_comparisons",
    "kar_roar_complete", "kar_roar_scores", "layer_scores", "pairwise", "percentile_interval", "replicates_for", "road_statistics",
    "with_holm",
]
