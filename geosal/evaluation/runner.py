"""Run the protocols of ``geosal evaluate`` and write the reports.

:func:`run_evaluation` loads the model and the split, computes (or reuses)
the saliency maps, runs every requested protocol cell by cell (each finished
cell is on disk at once, so an interrupted run resumes where it stopped), times
every method alone in the same run, and rewrites the CSV / Markdown / plots
and ``README.md`` of the results folder from all finished cells.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from geosal.evaluation import deletion as deletion_curves
from geosal.evaluation import report
from geosal.evaluation.catalog import LEARNED, SCALES, layer_methods
from geosal.evaluation.cells import CellStore, write_json_atomic
from geosal.evaluation.config import EvaluationConfig, reductions
from geosal.evaluation.data import Split, load_splits
from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.kar_roar import RetrainData, layer_cells, plan_cells, run_cells
from geosal.evaluation.layer_weights import learned_weights
from geosal.evaluation.masking import mean_colour_uint8
from geosal.evaluation.methods import METHODS, Method, MethodContext, MethodOptions, get_methods, time_methods
from geosal.evaluation.report.summary import load_cells
from geosal.evaluation.road import ORDERS, road_correct
from geosal.evaluation.saliency_store import SaliencyStore, model_fingerprint
from geosal.evaluation.scores import auc
from geosal.models import LoadedModel, load_model
from geosal.models.device import native_bf16, resolve_device
from geosal.models.training import TrainingConfig

ORIGINAL = "original"
"""Method name of the unmodified-image reference rows of ROAD and deletion."""


class Evaluation:
    """State shared by the protocols of one run (model, splits, caches)."""

    def __init__(self, config: EvaluationConfig, command: str = "", log: Callable[[str], None] = print):
        self.config = config
        self.command = command
        self.log = log
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        self.bf16 = config.bf16 and native_bf16(self.device)
        if config.bf16 and not self.bf16:
            log(f"bfloat16 autocast off: {self.device} has no bfloat16 arithmetic (it would run several times slower "
                "than float32); float32 throughout")
        self.loaded: LoadedModel = load_model(config.model)
        self.spec = self.loaded.spec
        self.model = self.loaded.network.eval().to(self.device)
        self.model_size = int(self.spec.input_size)
        self.train, self.val = load_splits(config.data, config.train_per_class, config.val_per_class)
        if self.spec.classes and tuple(self.spec.classes) != tuple(self.train.classes):
            raise EvaluationError(f"the model's classes {list(self.spec.classes)[:3]}... are not the data's "
                                  f"{list(self.train.classes)[:3]}...")
        if self.spec.num_classes != len(self.train.classes):
            raise EvaluationError(f"the model has {self.spec.num_classes} outputs but the data {len(self.train.classes)} classes")
        input_range = float(np.mean([self.spec.pixel_scale * 255 / s for s in self.spec.std]))
        self.options = MethodOptions(seed=config.seed, nt_samples=config.nt_samples, noise_level=config.noise_level,
                                     input_range=round(input_range, 4), ig_steps=config.ig_steps,
                                     channel_reduce=config.channel_reduce)
        self.context = MethodContext(self.model, self.options)
        self.fingerprint = model_fingerprint(self.model)
        self.store = SaliencyStore(config.cache, self.context, self.preprocess, self.fingerprint, config.saliency_batch, log)
        self.results = Path(config.results)
        self._decoded: dict[tuple[str, int, int], np.ndarray] = {}
        self._learned: tuple[float, ...] | None = None
        self._accuracy: dict[tuple[str, int, int], float] = {}

    # --- helpers ---------------------------------------------------------------------------------

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """``uint8 [N, H, W, 3]`` -> the model's normalised input ``[N, 3, H, W]`` on the evaluation device."""
        return self.loaded.preprocess(images).to(self.device)

    def images(self, split: Split, size: int) -> np.ndarray:
        key = (split.name, len(split), size)
        if key not in self._decoded:
            started = time.perf_counter()
            self._decoded[key] = split.decode(size)
            self.log(f"  decoded {len(split)} {split.name} images at {size} px in {time.perf_counter() - started:.0f} s")
        return self._decoded[key]

    def base_settings(self) -> dict:
        return {"model": str(self.spec.weights) if self.spec.weights.kind != "checkpoint" else "checkpoint",
                "model_sha1": self.fingerprint, "method_options": asdict(self.options), "seed": self.config.seed}

    def time(self, methods: list[Method], size: int) -> None:
        """Time each method alone on the first validation images at ``size`` px (once per settings)."""
        path = self.results / "timing.json"
        timing = json.loads(path.read_text()) if path.exists() else {}
        wanted = {"model_sha1": self.fingerprint, "method_options": asdict(self.options), "device": self.device}

        def measured(method: Method) -> bool:
            entry = {"device": "cpu", **timing.get(f"{method.name}@{size}", {})}
            return all(entry.get(k) == v for k, v in wanted.items())

        missing = [m for m in methods if not measured(m)]
        if not missing:
            return
        count = min(self.config.timing_images, len(self.val))
        x = self.preprocess(self.images(self.val, size)[:count])
        ids = self.val.ids[:count].tolist()
        if any(m.name == LEARNED for m in missing):
            self.context.learned_weights = self.learned_weights()
        self.log(f"timing {len(missing)} methods alone on {count} images at {size} px ({torch.get_num_threads()} threads)")
        for method in missing:
            seconds = time_methods(self.context, [method], x, ids, batch_size=self.config.saliency_batch)[method.name]
            timing[f"{method.name}@{size}"] = {"method": method.name, "label": method.label, "size": size,
                                               "seconds_per_image": seconds, "threads": torch.get_num_threads(),
                                               "device": self.device,
                                               "images": count, "model_sha1": self.fingerprint,
                                               "method_options": asdict(self.options)}
            write_json_atomic(path, timing)
            self.log(f"  {method.name:28s} {1000 * seconds:10.1f} ms/image")

    def record_run(self, protocol: str, started: float, extra: dict) -> None:
        split, _ = self._evaluation_split()
        rows = reductions(self.config, self.model_size, len(self.train), len(self.val), len(split))
        write_json_atomic(self.results / protocol.replace("-", "_") / "run.json", {
            "command": self.command, "protocol": protocol, "reductions": [list(r) for r in rows],
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "wall_seconds_this_call": round(time.perf_counter() - started, 1), "threads": torch.get_num_threads(),
            "device": self.device, "bf16": self.bf16,
            "config": self.config.to_dict(), **extra,
        })

    def training_config(self) -> TrainingConfig:
        c = self.config
        return TrainingConfig(epochs=c.epochs, batch_size=c.batch_size, crop=c.retrain_crop, min_crop_area=c.min_crop_area,
                              lr=c.lr, warmup_epochs=c.warmup_epochs, label_smoothing=c.label_smoothing,
                              mix_probability=c.mix_probability, colour_jitter=c.colour_jitter, bf16=self.bf16,
                              seed=c.retrain_seeds[0], validate_every=c.validate_every)

    @property
    def network(self) -> str:
        """The architecture the retraining protocols train from scratch."""
        return self.spec.architecture if self.config.network == "model" else self.config.network

    def learned_weights(self) -> tuple[float, ...]:
        """The SMOE layer weights learned from the ``layers`` protocol's finished cells (see
        :mod:`geosal.evaluation.layer_weights`), read once per run."""
        if self._learned is None:
            weights, scores = learned_weights(load_cells(self.results / "layers"))
            self.log(f"learned layer weights {list(weights)} from per-layer scores {[round(d, 3) for d in scores]}")
            self._learned = weights
        return self._learned

    def check_learned_cells(self, store: CellStore) -> None:
        """Refuse to mix ``smoe_learned`` cells of two sets of weights (the layers cells changed since).

        Raises:
            EvaluationError: a finished ``smoe_learned`` cell was made with other weights.
        """
        weights = list(self.learned_weights())
        stale = [row for row in store.rows() if row.get("method") == LEARNED and row.get("learned_weights") != weights]
        if stale:
            raise EvaluationError(f"{len(stale)} finished smoe_learned cells in {store.cells} were made with layer weights "
                                  f"{stale[0].get('learned_weights')}, the layers cells now give {weights}: delete "
                                  f"{store.cells}/{LEARNED}__*.json to retrain them")

    def load_maps(self, name: str, split: Split, source: int, size: int) -> np.ndarray:
        """``[N, size, size]`` float32 maps of ``name``; ``smoe_learned`` is the learned-weight mean of the
        cached single-scale maps (Eq. 3 is linear and area resizing too, so this equals computing it directly)."""
        if name != LEARNED:
            return np.array(self.store.load(name, split, source, size))
        weights = self.learned_weights()
        total = np.zeros((len(split), size, size), np.float32)
        for layer, weight in enumerate(weights, 1):
            if weight:
                total += weight * np.asarray(self.store.load(f"smoe_L{layer}", split, source, size))
        return total / sum(weights)

    def ensure_maps(self, methods: list[Method], split: Split, source: int, sizes: list[int]) -> None:
        """Compute the missing maps of ``methods`` (``smoe_learned``: its single-scale maps)."""
        wanted = [m for m in methods if m.name != LEARNED]
        if any(m.name == LEARNED for m in methods):
            wanted += [METHODS[f"smoe_L{k}"] for k in range(1, SCALES + 1) if f"smoe_L{k}" not in {m.name for m in wanted}]
        self.store.ensure(wanted, split, source, sizes, lambda: self.images(split, source))

    def model_accuracy(self, split: Split, size: int) -> float:
        """Accuracy of the explained model on ``split`` at ``size`` px (how well it sees the images
        its saliency is computed on)."""
        key = (split.name, len(split), size)
        if key not in self._accuracy:
            x = self.preprocess(self.images(split, size))
            self._accuracy[key] = float((self.classify_logits(x).argmax(1).numpy() == split.labels).mean())
        return self._accuracy[key]

    def classify_logits(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        out = []
        with torch.no_grad(), torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16):
            for first in range(0, len(x), batch_size):
                out.append(self.model(x[first : first + batch_size].to(self.device)).float().cpu())
        return torch.cat(out)

    # --- retraining protocols --------------------------------------------------------------------

    def _retraining(self, protocol: str, methods: list[Method], cells, settings: dict) -> None:
        c = self.config
        started = time.perf_counter()
        source = c.saliency_size or self.model_size
        store = CellStore(self.results / protocol.replace("-", "_"), settings)
        pending = {cell.method for cell in cells if not store.has(*cell.key) and cell.same_as is None and cell.mode != "none"}
        todo = [m for m in methods if m.name in pending]
        if todo:
            self.time(todo, source)
            self.log(f"{protocol}: saliency of {len(todo)} methods on {len(self.train) + len(self.val)} images at {source} px")
            for split in (self.train, self.val):
                self.ensure_maps(todo, split, source, [c.image_size])
        data = RetrainData(
            self.images(self.train, c.image_size), self.train.labels, self.train.ids,
            self.images(self.val, c.image_size), self.val.labels, self.val.ids,
            tuple(self.spec.mean), tuple(self.spec.std), mean_colour_uint8(self.spec.mean, self.spec.pixel_scale),
        )

        def maps(name: str) -> tuple[np.ndarray, np.ndarray]:
            return self.load_maps(name, self.train, source, c.image_size), self.load_maps(name, self.val, source, c.image_size)

        labels = {m.name: m.label for m in methods}
        weights = list(self.learned_weights()) if any(m.name == LEARNED for m in methods) else None
        if weights is not None:
            self.check_learned_cells(store)
        extra = {LEARNED: {"learned_weights": weights}} if weights is not None else {}
        computed = run_cells(cells, store, data, maps, self.network, self.training_config(), labels,
                             seed=c.seed, log=self.log, protocol=protocol, device=self.device, extra=extra)
        record = self.results / protocol.replace("-", "_") / "run.json"
        previous = json.loads(record.read_text()) if record.is_file() else {}
        if computed == 0 and previous:
            self.log(f"{protocol}: every cell was already computed; {record.name} still describes the run that computed them")
            return
        # A resumed run times only the maps it had to compute: the earlier calls' timings and wall time carry over.
        earlier = previous.get("saliency_bulk_timing", {})
        timing = {split.name: {**earlier.get(split.name, {}), **self.store.timings(split, source)} for split in (self.train, self.val)}
        wall = previous.get("wall_seconds_all_calls", previous.get("wall_seconds_this_call", 0.0)) + time.perf_counter() - started
        accuracy = {str(size): self.model_accuracy(self.val, size) for size in sorted({source, self.model_size})}
        self.record_run(protocol, started, {"cells_computed_this_call": computed, "cells": len(cells),
                                            "wall_seconds_all_calls": round(wall, 1),
                                            "saliency_bulk_timing": timing, "saliency_size": source,
                                            "model_size": self.model_size, "explained_model_val_accuracy": accuracy,
                                            "network": self.network,
                                            "learned_weights": weights})

    def retraining_settings(self, protocol: str) -> dict:
        """What the retraining cells depend on; not the retraining seed, which is part of every cell's key
        (so more seeds can be added to a results folder), nor the precision, which is the device's (recorded in
        each cell, like the device is in run.json)."""
        c = self.config
        training = {k: v for k, v in asdict(self.training_config()).items() if k not in ("seed", "bf16")}
        return {**self.base_settings(), "protocol": protocol, "image_size": c.image_size,
                "saliency_size": c.saliency_size or self.model_size, "training": training,
                "train_ids": len(self.train), "val_ids": len(self.val), "share_random": c.share_random,
                "architecture": self.network}

    def kar_roar(self) -> None:
        methods = get_methods(self.config.methods)
        cells = plan_cells([m.name for m in methods], self.config.percentages, self.config.share_random, self.config.reference,
                           self.config.retrain_seeds)
        self._retraining("kar-roar", methods, cells, self.retraining_settings("kar-roar"))

    def layers(self) -> None:
        names = layer_methods(self.config.layer_statistics)
        methods = [METHODS[n] for n in names]
        cells = layer_cells(names, self.config.layer_kar, self.config.layer_roar, self.config.layer_seeds)
        self._retraining("layers", methods, cells, self.retraining_settings("layers"))

    # --- protocols with the original model -------------------------------------------------------

    def _evaluation_split(self) -> tuple[Split, int]:
        return self.val.head(self.config.eval_per_class), self.config.eval_size or self.model_size

    def _prepare_eval(self, protocol: str, methods: list[Method], done: Callable[[str], bool]):
        split, size = self._evaluation_split()
        todo = [m for m in methods if not done(m.name)]
        if todo:
            self.time(todo, size)
            self.log(f"{protocol}: saliency of {len(todo)} methods on {len(split)} validation images at {size} px")
            self.ensure_maps(todo, split, size, [size])
        return split, size, todo

    def eval_settings(self, protocol: str) -> dict:
        split, size = self._evaluation_split()
        return {**self.base_settings(), "protocol": protocol, "size": size, "images": len(split),
                "percentages": list(self.config.percentages), "road_noise": self.config.road_noise,
                "deletion_steps": self.config.deletion_steps, "deletion_substrate": self.config.deletion_substrate}

    def road(self) -> None:
        c = self.config
        started = time.perf_counter()
        methods = get_methods(c.eval_methods)
        store = CellStore(self.results / "road", self.eval_settings("road"))
        fractions = [round(float(p), 6) for p in c.percentages]
        split, size, todo = self._prepare_eval("road", methods, lambda name: all(
            store.has(name, order, p) for order in ORDERS for p in fractions))
        x = self.loaded.preprocess(self.images(split, size))
        labels = torch.from_numpy(split.labels)
        ids = split.ids.tolist()

        def classify(images: torch.Tensor) -> torch.Tensor:
            return self.classify_logits(images).argmax(1)

        if not store.has(ORIGINAL, "none", 0.0):
            correct = (classify(x) == labels).numpy()
            store.put({"protocol": "road", "method": ORIGINAL, "label": "Unmodified images", "order": "none",
                       "fraction": 0.0, "accuracy": float(correct.mean()), "correct": correct.astype(int).tolist(),
                       "ids": ids, "images": len(split)}, ORIGINAL, "none", 0.0)
        for method in todo:
            maps = torch.from_numpy(self.load_maps(method.name, split, size, size))
            for order in ORDERS:
                for p in fractions:
                    if store.has(method.name, order, p):
                        continue
                    t0 = time.perf_counter()
                    correct = road_correct(classify, x, labels, maps, p, order, ids, noise=c.road_noise, seed=c.seed)
                    accuracy = float(correct.mean())
                    store.put({"protocol": "road", "method": method.name, "label": method.label, "order": order,
                               "fraction": p, "accuracy": accuracy, "correct": correct.astype(int).tolist(), "ids": ids,
                               "images": len(split), "seconds": time.perf_counter() - t0}, method.name, order, p)
                    self.log(f"  road {method.name} {order} {100 * p:g}%: accuracy {accuracy:.4f} "
                             f"({time.perf_counter() - t0:.0f} s)")
        self.record_run("road", started, {"images": len(split), "size": size})

    def deletion(self) -> None:
        c = self.config
        started = time.perf_counter()
        methods = get_methods(c.eval_methods)
        store = CellStore(self.results / "deletion", self.eval_settings("deletion"))
        split, size, todo = self._prepare_eval("deletion", methods, lambda name: all(
            store.has(name, kind) for kind in deletion_curves.KINDS))
        x = self.loaded.preprocess(self.images(split, size))
        ids = split.ids.tolist()

        def probabilities(images: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.classify_logits(images), dim=1)

        for method in todo:
            maps = torch.from_numpy(self.load_maps(method.name, split, size, size))
            for kind in deletion_curves.KINDS:
                if store.has(method.name, kind):
                    continue
                t0 = time.perf_counter()
                parts = []
                for first in range(0, len(x), 32):
                    part = slice(first, first + 32)
                    parts.append(deletion_curves.curves(probabilities, x[part], maps[part], ids[part], kind,
                                                        c.deletion_steps, c.deletion_substrate, c.seed))
                values = np.concatenate(parts)
                areas = deletion_curves.curve_areas(values)
                store.put({"protocol": "deletion", "method": method.name, "label": method.label, "kind": kind,
                           "auc": float(areas.mean()), "auc_std": float(areas.std()), "auc_of_mean_curve": auc(values.mean(0)),
                           "areas": [round(float(a), 5) for a in areas], "ids": ids,
                           "curve": [round(float(v), 5) for v in values.mean(0)], "images": len(split),
                           "steps": c.deletion_steps, "seconds": time.perf_counter() - t0}, method.name, kind)
                self.log(f"  {kind} {method.name}: AUC {areas.mean():.4f} ({time.perf_counter() - t0:.0f} s)")
        self.record_run("deletion", started, {"images": len(split), "size": size})

    # --- all -------------------------------------------------------------------------------------

    def run(self) -> Path:
        steps = {"kar-roar": self.kar_roar, "layers": self.layers, "road": self.road, "deletion": self.deletion}
        self.results.mkdir(parents=True, exist_ok=True)
        # The layers protocol first: the learned weights of the retraining protocol come from it.
        for protocol in sorted(self.config.protocols, key=lambda p: p != "layers"):
            self.log(f"=== {protocol} ===")
            steps[protocol]()
            self.write_reports()
        return self.results

    def write_reports(self) -> None:
        report.write_all(self.results, self.log)


def run_evaluation(config: EvaluationConfig, command: str = "", log: Callable[[str], None] = print) -> Path:
    """Run ``config.protocols`` (resuming finished cells) and write the reports; returns the results folder."""
    threads = torch.get_num_threads()
    try:
        return Evaluation(config, command, log).run()
    finally:
        torch.set_num_threads(threads)
