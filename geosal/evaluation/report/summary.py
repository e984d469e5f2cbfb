"""The numbers of each protocol's report, from its finished cells on disk.

Each protocol folder of a results folder holds ``cells/*.json`` (one finished
cell each) and ``run.json`` (the command and settings of its last run). The
summaries here are numbers with their uncertainty: accuracies and scores as
fractions, the paper's Table 2 sums and Eqs. 8 and 9
(:mod:`geosal.evaluation.scores`), each an
:class:`~geosal.evaluation.uncertainty.Estimate` with its 95 % bootstrap
interval (:mod:`geosal.evaluation.uncertainty`), and the pairwise comparisons
between methods; how they are printed is
:mod:`~geosal.evaluation.report.tables`' job.

What the summaries read from a cell (missing fields are tolerated):

- ``kar_roar`` / ``layers``: ``method``, ``label``, ``mode`` (``kar``, ``roar``,
  ``none`` for the unmasked reference), ``fraction``, ``seed`` (the retraining
  seed; 0 when absent), ``accuracy``, ``correct`` (0/1 per validation image)
  and ``val_ids`` (the image ids in the same order), ``shared_with`` (a random
  ROAR cell that reuses a KAR cell: its ``correct`` is the KAR cell's when it
  has none of its own), ``val_images``.
- ``road``: ``method``, ``label``, ``order`` (``morf``, ``lerf``, ``none`` for
  the unmodified images), ``fraction``, ``accuracy``, ``correct``, ``ids``, ``images``.
- ``deletion``: ``method``, ``label``, ``kind`` (``deletion``, ``insertion``),
  ``auc``, ``areas`` (per-image AUC in [0, 1]), ``ids``, ``curve``, ``images``.

A cell without per-image outcomes (written before they were recorded), or whose
image ids are not the run's, gives a point estimate without an interval.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geosal.evaluation.uncertainty import (
    REPLICATES,
    SEED,
    Comparison,
    DeletionStatistics,
    Estimate,
    Outcomes,
    Resampler,
    Retraining,
    deletion_statistics,
    image_estimate,
    kar_roar_comparisons,
    kar_roar_scores,
    layer_scores,
    replicates_for,
    road_statistics,
)

PROTOCOL_FOLDERS = {"kar-roar": "kar_roar", "layers": "layers", "road": "road", "deletion": "deletion"}
"""Protocol -> its folder in the results folder (also the stem of its CSV, Markdown and PNG files)."""

LAYERS = range(1, 6)
"""The scales of the per-layer protocol, L1 (finest) .. L5."""


def load_cells(folder: Path) -> list[dict]:
    """The finished cells of a protocol folder, in file-name order (``[]`` when there are none)."""
    cells = folder / "cells"
    return [json.loads(p.read_text()) for p in sorted(cells.glob("*.json"))] if cells.is_dir() else []


def load_run_settings(folder: Path) -> dict:
    """The protocol folder's ``settings.json`` (what its cells depend on), ``{}`` if absent."""
    path = Path(folder) / "settings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def load_run(folder: Path) -> dict:
    """``run.json`` of a protocol folder, or ``{}``."""
    path = folder / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def timing_table(results: Path) -> dict[tuple[str, int], dict]:
    """The timing rows of ``results/timing.json`` by ``(method, image size in px)`` (seconds per image inside)."""
    path = results / "timing.json"
    if not path.exists():
        return {}
    return {(v["method"], int(v["size"])): v for v in json.loads(path.read_text()).values()}



# --- per-image outcomes ------------------------------------------------------------------------------


def _image_order(rows: list[dict], values: str, ids: str) -> list[int] | None:
    """The image ids of the first row with per-image ``values`` and ``ids`` (the run's fixed order), or None."""
    for row in rows:
        if row.get(values) is not None and row.get(ids) is not None and len(row[values]) == len(row[ids]):
            return [int(i) for i in row[ids]]
    return None


def _image_count(rows: list[dict], values: str, order: list[int] | None, count: str) -> int | None:
    """Images behind the cells: the run's image ids, else the first per-image list, else the ``count`` field."""
    if order is not None:
        return len(order)
    lengths = [len(row[values]) for row in rows if row.get(values) is not None]
    if lengths:
        return lengths[0]
    counts = [int(row[count]) for row in rows if row.get(count) is not None]
    return max(counts) if counts else None


def _aligned(row: dict, values: str, ids: str, order: list[int] | None, images: int | None) -> np.ndarray | None:
    """``row[values]`` (one per image) in the run's image ``order``, or None (absent, or other images)."""
    data = row.get(values)
    if data is None:
        return None
    array = np.asarray(data, dtype=np.float64)
    row_ids = row.get(ids)
    if array.ndim != 1 or (images is not None and len(array) != images):
        return None
    if order is None or row_ids is None:
        return array
    row_ids = [int(i) for i in row_ids]
    if row_ids == order:
        return array
    position = {image: index for index, image in enumerate(row_ids)}
    if len(position) != len(row_ids) or set(position) != set(order):
        return None
    return array[[position[image] for image in order]]


def _resampler(images: int | None, any_outcomes: bool, replicates: int, seed: int) -> Resampler | None:
    return Resampler(images, replicates, seed) if any_outcomes and images else None


def _fraction(row: dict) -> float:
    return round(float(row["fraction"]), 6)


def _shared_source(row: dict) -> tuple[str, float] | None:
    """``shared_with`` (``"kar 90%"``) -> ``("kar", 0.9)``, or None."""
    try:
        mode, share = str(row["shared_with"]).split()
        return mode, round(float(share.rstrip("%")) / 100, 6)
    except (KeyError, ValueError):
        return None


def retraining_outcomes(cells: list[dict]) -> tuple[dict[str, dict[tuple[str, float], Outcomes]], int | None]:
    """The cells of a retraining protocol as :class:`~geosal.evaluation.uncertainty.Outcomes`.

    Returns:
        ``(outcomes, images)``: method -> ``(mode, fraction)`` -> its seeds, their accuracies and their
        ``correct`` ``[seeds, images]`` (None unless every seed has one in the run's image order);
        and the number of validation images (None when no cell says).
    """
    rows: dict[tuple[str, str, float], dict[int, dict]] = defaultdict(dict)
    for row in cells:
        rows[row["method"], row["mode"], _fraction(row)][int(row.get("seed", 0))] = row
    order = _image_order(cells, "correct", "val_ids")
    images = _image_count(cells, "correct", order, "val_images")

    def correct(row: dict) -> np.ndarray | None:
        own = _aligned(row, "correct", "val_ids", order, images)
        source = _shared_source(row) if own is None else None
        if source is not None:  # a random ROAR cell sharing a KAR cell's retraining
            seed = int(row.get("seed", 0))
            shared = rows.get((row["method"], *source), {}).get(seed)
            return _aligned(shared, "correct", "val_ids", order, images) if shared else None
        return own

    outcomes: dict[str, dict[tuple[str, float], Outcomes]] = defaultdict(dict)
    for (method, mode, fraction), by_seed in rows.items():
        seeds = tuple(sorted(by_seed))
        vectors = [correct(by_seed[s]) for s in seeds]
        stacked = None if any(v is None for v in vectors) else np.stack(vectors)
        outcomes[method][mode, fraction] = Outcomes(seeds, tuple(float(by_seed[s]["accuracy"]) for s in seeds), stacked)
    return dict(outcomes), images


def seeds_of(outcomes: dict[tuple[str, float], Outcomes]) -> tuple[int, ...]:
    """The seeds every cell of one method has."""
    common: set[int] | None = None
    for cell in outcomes.values():
        common = set(cell.seeds) if common is None else common & set(cell.seeds)
    return tuple(sorted(common or ()))


# --- the retraining protocol -------------------------------------------------------------------------


@dataclass(frozen=True)
class KarRoarSummary:
    """Accuracies and scores of the retraining protocol, with 95 % intervals.

    Attributes:
        fractions: every percentage of a cell, as a sorted fraction.
        methods: in first-seen order, ``random`` first.
        labels: method -> label.
        kar, roar: method -> {fraction: accuracy in [0, 1] over the cell's seeds}.
        reference: accuracy retrained on unmasked images (over its seeds), or None.
        reference_seeds: seed -> the reference's accuracy with that seed alone (an interval over images).
        scores: method -> ``kar``, ``roar``, ``sum`` (Table 2), ``difference`` (Eq. 8) and
            ``information`` (Eq. 9) against the random map, for methods with every cell
            (``difference`` and ``information`` None until random has every cell).
        ranked: the methods of ``scores``, best SUM first (the order of the tables).
        comparisons: ``sum``, ``kar``, ``roar`` -> pairwise differences in ``ranked`` order (Holm per table).
        seeds: method -> the seeds every one of its cells has (what its scores use).
        images: validation images behind an accuracy (from the cells), or None.
        retrainings: ``(method, mode, fraction, seed)`` -> that retraining's accuracy alone (an interval over images).
        replicates: bootstrap replicates ``B``.
    """

    fractions: list[float]
    methods: list[str]
    labels: dict[str, str]
    kar: dict[str, dict[float, Estimate]]
    roar: dict[str, dict[float, Estimate]]
    reference: Estimate | None
    reference_seeds: dict[int, Estimate]
    scores: dict[str, dict[str, Estimate | None]]
    ranked: list[str]
    comparisons: dict[str, list[Comparison]]
    seeds: dict[str, tuple[int, ...]]
    images: int | None
    retrainings: dict[tuple[str, str, float, int], Estimate]
    replicates: int

    def has_intervals(self, method: str) -> bool:
        """Every cell of ``method`` has an interval (per-image outcomes for every seed)."""
        cells = [*self.kar.get(method, {}).values(), *self.roar.get(method, {}).values()]
        return bool(cells) and all(e.has_interval for e in cells)


def summarise_kar_roar(cells: list[dict], replicates: int = REPLICATES, seed: int = SEED) -> KarRoarSummary:
    """The :class:`KarRoarSummary` of the retraining cells.

    ``replicates`` is the bootstrap's least ``B`` (raised by :func:`replicates_for` to what the pairwise
    table of the methods needs), ``seed`` its generator's seed.
    """
    outcomes, images = retraining_outcomes(cells)
    any_outcomes = any(c.correct is not None for m in outcomes.values() for c in m.values())
    labels, reference_key, reference_method = {}, None, None
    for row in cells:
        if row["mode"] == "none":
            reference_method, reference_key = row["method"], ("none", _fraction(row))
        else:
            labels[row["method"]] = row["label"]
    replicates = replicates_for(len(labels), replicates)
    boot = Retraining(outcomes, _resampler(images, any_outcomes, replicates, seed))
    kar: dict[str, dict[float, Estimate]] = defaultdict(dict)
    roar: dict[str, dict[float, Estimate]] = defaultdict(dict)
    for method in labels:
        for (mode, fraction) in outcomes[method]:
            (kar if mode == "kar" else roar)[method][fraction] = boot.cell(method, (mode, fraction))
    fractions = sorted({f for table in (kar, roar) for values in table.values() for f in values})
    methods = sorted(labels, key=lambda m: (m != "random", list(labels).index(m)))
    scores = kar_roar_scores(boot, methods, fractions)
    ranked = sorted(scores, key=lambda m: -scores[m]["sum"].value)
    comparisons = kar_roar_comparisons(boot, ranked, fractions)
    reference = boot.cell(reference_method, reference_key) if reference_method else None
    reference_seeds = boot.per_seed(reference_method, reference_key) if reference_method else {}
    retrainings = {(method, *key, s): estimate for method, by_key in outcomes.items() for key in by_key
                   for s, estimate in boot.per_seed(method, key).items()}
    return KarRoarSummary(fractions, methods, labels, dict(kar), dict(roar), reference, reference_seeds, scores, ranked,
                          comparisons, {m: seeds_of(outcomes[m]) for m in methods}, images, retrainings, replicates)


# --- the per-layer protocol ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSummary:
    """Accuracies and scores of the per-layer protocol (Table 1, Table 4, Figure 4), with 95 % intervals.

    Attributes:
        kar, roar: single-scale method (``smoe_L3``) -> accuracy in [0, 1] over its seeds.
        labels: method -> label.
        statistics: method prefixes, ``random`` first, then ``smoe``, then first-seen order.
        scores: prefix -> ``difference`` (Eq. 8) and ``information`` (Eq. 9) against the random maps,
            for prefixes with every layer's cells.
        per_layer: prefix (not random) -> per layer (z_roar - roar) + (kar - z_kar), None where a cell is missing.
        kar_fraction, roar_fraction: the fraction kept / removed (from the first such cell), or None.
        seeds: prefix -> the seeds every one of its cells has.
        images: validation images behind an accuracy (from the cells), or None.
        retrainings: ``(method, mode, fraction, seed)`` -> that retraining's accuracy alone.
        replicates: bootstrap replicates ``B``.
    """

    kar: dict[str, Estimate]
    roar: dict[str, Estimate]
    labels: dict[str, str]
    statistics: list[str]
    scores: dict[str, dict[str, Estimate | None]]
    per_layer: dict[str, list[Estimate | None]]
    kar_fraction: float | None
    roar_fraction: float | None
    seeds: dict[str, tuple[int, ...]]
    images: int | None
    retrainings: dict[tuple[str, str, float, int], Estimate]
    replicates: int

    def label(self, prefix: str) -> str:
        """The statistic's label (its L1 method's label without `` L1``), else the prefix."""
        return self.labels.get(f"{prefix}_L1", prefix).rsplit(" L", 1)[0]


def summarise_layers(cells: list[dict], replicates: int = REPLICATES, seed: int = SEED) -> LayerSummary:
    """The :class:`LayerSummary` of the per-layer cells."""
    outcomes, images = retraining_outcomes(cells)
    any_outcomes = any(c.correct is not None for m in outcomes.values() for c in m.values())
    boot = Retraining(outcomes, _resampler(images, any_outcomes, replicates, seed))
    kar, roar, labels = {}, {}, {}
    for row in cells:
        labels[row["method"]] = row["label"]
        (kar if row["mode"] == "kar" else roar)[row["method"]] = boot.cell(row["method"], (row["mode"], _fraction(row)))
    prefixes = []
    for method in labels:
        prefix = method.rsplit("_L", 1)[0]
        if prefix not in prefixes:
            prefixes.append(prefix)
    prefixes.sort(key=lambda p: (p != "random", p != "smoe"))
    kar_fraction = next((_fraction(r) for r in cells if r["mode"] == "kar"), None)
    roar_fraction = next((_fraction(r) for r in cells if r["mode"] == "roar"), None)
    scores, per_layer = layer_scores(boot, prefixes, LAYERS, ("kar", kar_fraction), ("roar", roar_fraction))
    seeds = {p: seeds_of({(m, *k): c for m in outcomes if m.rsplit("_L", 1)[0] == p for k, c in outcomes[m].items()})
             for p in prefixes}
    retrainings = {(method, *key, s): estimate for method, by_key in outcomes.items() for key in by_key
                   for s, estimate in boot.per_seed(method, key).items()}
    return LayerSummary(kar, roar, labels, prefixes, scores, per_layer, kar_fraction, roar_fraction, seeds, images, retrainings,
                        replicates)


# --- ROAD --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoadSummary:
    """Accuracies of ROAD with 95 % intervals over the images.

    Attributes:
        fractions: every percentage removed, as a sorted fraction.
        labels: method -> label, in first-seen order (the unmodified-image row excluded).
        accuracy: method -> order (``morf`` / ``lerf``) -> {fraction: accuracy in [0, 1]}.
        original: accuracy on the unmodified images, or None.
        means: method -> (MoRF mean, LeRF mean, LeRF - MoRF), all None unless every cell is there.
        ranked: the methods, best LeRF - MoRF first, incomplete ones last (the order of the tables).
        comparisons: pairwise differences of LeRF - MoRF between complete methods, in ``ranked`` order (Holm).
        images: images behind an accuracy (from the cells), or None.
        replicates: bootstrap replicates ``B``.
    """

    fractions: list[float]
    labels: dict[str, str]
    accuracy: dict[str, dict[str, dict[float, Estimate]]]
    original: Estimate | None
    means: dict[str, tuple[Estimate | None, Estimate | None, Estimate | None]]
    ranked: list[str]
    comparisons: list[Comparison]
    images: int | None
    replicates: int

    def curve(self, method: str, order: str) -> list[Estimate | None]:
        """Accuracy at each of :attr:`fractions` (None where the cell is missing)."""
        return [self.accuracy.get(method, {}).get(order, {}).get(f) for f in self.fractions]

    def row(self, row: dict) -> Estimate | None:
        """The accuracy of one cell (the unmodified-image row included)."""
        if row["order"] == "none":
            return self.original
        return self.accuracy.get(row["method"], {}).get(row["order"], {}).get(_fraction(row))


def summarise_road(cells: list[dict], replicates: int = REPLICATES, seed: int = SEED) -> RoadSummary:
    """The :class:`RoadSummary` of the ROAD cells (``replicates``: the least ``B``, as in :func:`summarise_kar_roar`)."""
    order = _image_order(cells, "correct", "ids")
    images = _image_count(cells, "correct", order, "images")
    values: dict[str, dict[tuple[str, float], np.ndarray | float]] = defaultdict(dict)
    labels, original_values = {}, None
    for row in cells:
        aligned = _aligned(row, "correct", "ids", order, images)
        value = aligned if aligned is not None else float(row["accuracy"])
        if row["order"] == "none":
            original_values = value
            continue
        labels[row["method"]] = row["label"]
        values[row["method"]][row["order"], _fraction(row)] = value
    any_outcomes = any(isinstance(v, np.ndarray) for m in values.values() for v in m.values()) or isinstance(original_values, np.ndarray)
    replicates = replicates_for(len(labels), replicates)
    resampler = _resampler(images, any_outcomes, replicates, seed)
    fractions = sorted({f for m in values.values() for (_, f) in m})
    statistics = road_statistics(values, fractions, resampler)  # the pairwise table: best LeRF - MoRF first

    def gap(method: str) -> float:
        value = statistics.means[method][2]
        return value.value if value is not None else -math.inf

    ranked = sorted(labels, key=lambda m: -gap(m))  # the same order, incomplete methods last
    accuracy: dict[str, dict[str, dict[float, Estimate]]] = defaultdict(lambda: defaultdict(dict))
    for method, by_key in statistics.accuracy.items():
        for (order_name, fraction), value in by_key.items():
            accuracy[method][order_name][fraction] = value
    original = image_estimate(original_values, resampler) if original_values is not None else None
    return RoadSummary(fractions, labels, accuracy, original, statistics.means, ranked, statistics.comparisons, images,
                       replicates)


# --- deletion / insertion -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionSummary:
    """Areas under the deletion / insertion curves, with 95 % intervals over the images.

    Attributes:
        labels: method -> label, in first-seen order.
        cells: method -> kind (``deletion`` / ``insertion``) -> its cell (``auc``, ``curve``...).
        statistics: the areas, insertion - deletion and the pairwise comparisons (in ``ranked`` order).
        ranked: the methods, best insertion - deletion first, those missing a kind last.
        images: images behind an area (from the cells), or None.
        replicates: bootstrap replicates ``B``.
    """

    labels: dict[str, str]
    cells: dict[str, dict[str, dict]]
    statistics: DeletionStatistics
    ranked: list[str]
    images: int | None
    replicates: int

    @property
    def comparisons(self) -> list[Comparison]:
        return self.statistics.comparisons

    def area(self, method: str, kind: str) -> Estimate | None:
        """Mean area under the ``kind`` curves of ``method`` (a probability in [0, 1]), or None."""
        return self.statistics.area.get(method, {}).get(kind)

    def gap(self, method: str) -> Estimate | None:
        """Insertion area minus deletion area (larger is better), or None."""
        return self.statistics.gap.get(method)


def summarise_deletion(cells: list[dict], replicates: int = REPLICATES, seed: int = SEED) -> DeletionSummary:
    """The :class:`DeletionSummary` of the deletion / insertion cells (``replicates``: the least ``B``, as in
    :func:`summarise_kar_roar`)."""
    order = _image_order(cells, "areas", "ids")
    images = _image_count(cells, "areas", order, "images")
    by_method: dict[str, dict[str, dict]] = defaultdict(dict)
    values: dict[str, dict[str, np.ndarray | float]] = defaultdict(dict)
    labels = {}
    for row in cells:
        by_method[row["method"]][row["kind"]] = row
        labels[row["method"]] = row["label"]
        aligned = _aligned(row, "areas", "ids", order, images)
        values[row["method"]][row["kind"]] = aligned if aligned is not None else float(row["auc"])
    any_outcomes = any(isinstance(v, np.ndarray) for m in values.values() for v in m.values())
    replicates = replicates_for(len(labels), replicates)
    resampler = _resampler(images, any_outcomes, replicates, seed)
    statistics = deletion_statistics(values, resampler)  # the pairwise table: best insertion - deletion first

    def gap(method: str) -> float:
        value = statistics.gap.get(method)
        return value.value if value is not None else -math.inf

    ranked = sorted(labels, key=lambda m: -gap(m))  # the same order, methods missing a kind last
    return DeletionSummary(labels, dict(by_method), statistics, ranked, images, replicates)
