"""The numbers of each protocol's report, from its finished cells on disk.

Each protocol folder of a results folder holds ``cells/*.json`` (one finished
cell each) and ``run.json`` (the command and settings of its last run). The
summaries here are plain numbers: accuracies and scores as fractions, the
paper's Table 2 sums and Eqs. 8 and 9 (:mod:`geosal.evaluation.scores`); how
they are printed is :mod:`~geosal.evaluation.report.tables`' job.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geosal.evaluation.scores import difference_score, information_score, kar_roar_sums

PROTOCOL_FOLDERS = {"kar-roar": "kar_roar", "layers": "layers", "road": "road", "deletion": "deletion"}
"""Protocol -> its folder in the results folder (also the stem of its CSV, Markdown and PNG files)."""

LAYERS = range(1, 6)
"""The scales of the per-layer protocol, L1 (finest) .. L5."""


def load_cells(folder: Path) -> list[dict]:
    """The finished cells of a protocol folder, in file-name order (``[]`` when there are none)."""
    cells = folder / "cells"
    return [json.loads(p.read_text()) for p in sorted(cells.glob("*.json"))] if cells.is_dir() else []


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


@dataclass(frozen=True)
class KarRoarSummary:
    """Accuracies and scores of the retraining protocol.

    Attributes:
        fractions: every percentage of a cell, as a sorted fraction.
        methods: in first-seen order, ``random`` first.
        labels: method -> label.
        kar, roar: method -> {fraction: accuracy in [0, 1]}.
        reference: accuracy retrained on unmasked images, or None.
        scores: method -> ``kar``, ``roar``, ``sum`` (Table 2), ``difference`` (Eq. 8) and
            ``information`` (Eq. 9; None when an accuracy is 0) against the random map, for
            methods with every cell (``difference`` and ``information`` None until random has every cell).
    """

    fractions: list[float]
    methods: list[str]
    labels: dict[str, str]
    kar: dict[str, dict[float, float]]
    roar: dict[str, dict[float, float]]
    reference: float | None
    scores: dict[str, dict]


def summarise_kar_roar(cells: list[dict]) -> KarRoarSummary:
    """The :class:`KarRoarSummary` of the retraining cells."""
    kar: dict[str, dict[float, float]] = defaultdict(dict)
    roar: dict[str, dict[float, float]] = defaultdict(dict)
    labels, reference = {}, None
    for row in cells:
        if row["mode"] == "none":
            reference = row["accuracy"]
            continue
        labels[row["method"]] = row["label"]
        (kar if row["mode"] == "kar" else roar)[row["method"]][round(row["fraction"], 6)] = row["accuracy"]
    fractions = sorted({f for table in (kar, roar) for values in table.values() for f in values})
    methods = sorted(labels, key=lambda m: (m != "random", list(labels).index(m)))
    scores = {}
    z_kar = [kar.get("random", {}).get(f) for f in fractions]
    z_roar = [roar.get("random", {}).get(f) for f in fractions]
    random_complete = all(v is not None for v in z_kar + z_roar)
    for method in methods:
        k = [kar[method].get(f) for f in fractions]
        r = [roar[method].get(f) for f in fractions]
        if any(v is None for v in k + r):
            continue
        k_sum, r_sum, total = kar_roar_sums(k, r)
        entry = {"kar": k_sum, "roar": r_sum, "sum": total, "difference": None, "information": None}
        if random_complete:
            entry["difference"] = difference_score(r, k, z_roar, z_kar)
            if min(k + r + z_kar + z_roar) > 0:
                entry["information"] = information_score(r, k, z_roar, z_kar)
        scores[method] = entry
    return KarRoarSummary(fractions, methods, labels, kar, roar, reference, scores)


@dataclass(frozen=True)
class LayerSummary:
    """Accuracies and scores of the per-layer protocol (Table 1, Table 4, Figure 4).

    Attributes:
        kar, roar: single-scale method (``smoe_L3``) -> accuracy in [0, 1].
        labels: method -> label.
        statistics: method prefixes, ``random`` first, then ``smoe``, then first-seen order.
        scores: prefix -> ``difference`` (Eq. 8) and ``information`` (Eq. 9, None when an
            accuracy is 0) against the random maps, for prefixes with every layer's cells.
        per_layer: prefix (not random) -> per layer (z_roar - roar) + (kar - z_kar), None where a cell is missing.
        kar_fraction, roar_fraction: the fraction kept / removed (from the first such cell), or None.
    """

    kar: dict[str, float]
    roar: dict[str, float]
    labels: dict[str, str]
    statistics: list[str]
    scores: dict[str, dict]
    per_layer: dict[str, list[float | None]]
    kar_fraction: float | None
    roar_fraction: float | None

    def label(self, prefix: str) -> str:
        """The statistic's label (its L1 method's label without `` L1``), else the prefix."""
        return self.labels.get(f"{prefix}_L1", prefix).rsplit(" L", 1)[0]


def summarise_layers(cells: list[dict]) -> LayerSummary:
    """The :class:`LayerSummary` of the per-layer cells."""
    kar, roar, labels = {}, {}, {}
    for row in cells:
        (kar if row["mode"] == "kar" else roar)[row["method"]] = row["accuracy"]
        labels[row["method"]] = row["label"]
    prefixes = []
    for method in labels:
        prefix = method.rsplit("_L", 1)[0]
        if prefix not in prefixes:
            prefixes.append(prefix)
    prefixes.sort(key=lambda p: (p != "random", p != "smoe"))
    scores, per_layer = {}, {}
    z_kar = [kar.get(f"random_L{k}") for k in LAYERS]
    z_roar = [roar.get(f"random_L{k}") for k in LAYERS]
    for prefix in prefixes:
        if prefix == "random":
            continue
        k = [kar.get(f"{prefix}_L{layer}") for layer in LAYERS]
        r = [roar.get(f"{prefix}_L{layer}") for layer in LAYERS]
        per_layer[prefix] = [None if None in (zr, rr, kk, zk) else (zr - rr) + (kk - zk)
                             for zr, rr, kk, zk in zip(z_roar, r, k, z_kar)]
        if None in k + r + z_kar + z_roar:
            continue
        scores[prefix] = {"difference": difference_score(r, k, z_roar, z_kar),
                          "information": information_score(r, k, z_roar, z_kar) if min(k + r + z_kar + z_roar) > 0 else None}
    kar_fraction = next((r["fraction"] for r in cells if r["mode"] == "kar"), None)
    roar_fraction = next((r["fraction"] for r in cells if r["mode"] == "roar"), None)
    return LayerSummary(kar, roar, labels, prefixes, scores, per_layer, kar_fraction, roar_fraction)


@dataclass(frozen=True)
class RoadSummary:
    """Accuracies of ROAD.

    Attributes:
        fractions: every percentage removed, as a sorted fraction.
        labels: method -> label, in first-seen order (the unmodified-image row excluded).
        accuracy: method -> order (``morf`` / ``lerf``) -> {fraction: accuracy in [0, 1]}.
        original: accuracy on the unmodified images, or None.
        means: method -> (MoRF mean, LeRF mean, LeRF - MoRF), all None unless every cell is there.
    """

    fractions: list[float]
    labels: dict[str, str]
    accuracy: dict[str, dict[str, dict[float, float]]]
    original: float | None
    means: dict[str, tuple[float | None, float | None, float | None]]

    def curve(self, method: str, order: str) -> list[float | None]:
        """Accuracy at each of :attr:`fractions` (None where the cell is missing)."""
        return [self.accuracy.get(method, {}).get(order, {}).get(f) for f in self.fractions]


def summarise_road(cells: list[dict]) -> RoadSummary:
    """The :class:`RoadSummary` of the ROAD cells."""
    original = next((r["accuracy"] for r in cells if r["order"] == "none"), None)
    accuracy: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    labels = {}
    for row in cells:
        if row["order"] == "none":
            continue
        labels[row["method"]] = row["label"]
        accuracy[row["method"]][row["order"]][round(row["fraction"], 6)] = row["accuracy"]
    fractions = sorted({f for m in accuracy.values() for o in m.values() for f in o})
    means = {}
    for method in labels:
        morf, lerf = ([accuracy[method][order].get(f) for f in fractions] for order in ("morf", "lerf"))
        if None in morf + lerf:
            means[method] = (None, None, None)
        else:
            m_mean, l_mean = float(np.mean(morf)), float(np.mean(lerf))
            means[method] = (m_mean, l_mean, l_mean - m_mean)
    return RoadSummary(fractions, labels, accuracy, original, means)


@dataclass(frozen=True)
class DeletionSummary:
    """Areas under the deletion / insertion curves.

    Attributes:
        labels: method -> label, in first-seen order.
        cells: method -> kind (``deletion`` / ``insertion``) -> its cell (``auc``, ``curve``...).
    """

    labels: dict[str, str]
    cells: dict[str, dict[str, dict]]

    def area(self, method: str, kind: str) -> float | None:
        """Mean area under the ``kind`` curves of ``method`` (a probability in [0, 1]), or None."""
        return self.cells[method].get(kind, {}).get("auc")

    def gap(self, method: str) -> float | None:
        """Insertion area minus deletion area (larger is better), or None."""
        deletion, insertion = self.area(method, "deletion"), self.area(method, "insertion")
        return None if deletion is None or insertion is None else insertion - deletion


def summarise_deletion(cells: list[dict]) -> DeletionSummary:
    """The :class:`DeletionSummary` of the deletion / insertion cells."""
    by_method: dict[str, dict[str, dict]] = defaultdict(dict)
    labels = {}
    for row in cells:
        by_method[row["method"]][row["kind"]] = row
        labels[row["method"]] = row["label"]
    return DeletionSummary(labels, by_method)
