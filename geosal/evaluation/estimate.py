"""``geosal evaluate --estimate``: measure the costs with tiny runs and project
the wall time of a configuration on this machine, without running it.

Measured here, with the real model and images: each method's saliency time per
image (alone; methods sharing a forward pass are counted once per group), one
retraining epoch on a slice of the training images, the evaluation forward
pass, and the ROAD imputation at each percentage. The projection multiplies
these by the work of the full protocols (it ignores cells already finished).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from geosal.evaluation.catalog import SCALES, layer_methods
from geosal.evaluation.config import EvaluationConfig
from geosal.evaluation.kar_roar import layer_cells, plan_cells
from geosal.evaluation.methods import METHODS, Method, get_methods, time_methods
from geosal.evaluation.road import impute_batch, removal_keep_mask
from geosal.evaluation.runner import Evaluation
from geosal.models import build_network
from geosal.models.training import train_classifier


def _group_seconds(methods: list[Method], seconds: dict[str, float]) -> float:
    groups: dict[str, float] = {}
    for method in methods:
        key = method.group or method.name
        groups[key] = max(groups.get(key, 0.0), seconds[method.name])
    return sum(groups.values())


def estimate(config: EvaluationConfig, log: Callable[[str], None] = print, images: int = 4) -> dict:
    """Measure and print the projected wall time of each protocol of ``config``.

    Returns:
        ``{"measured": {...}, "projected_seconds": {protocol: seconds}}``.
    """
    run = Evaluation(config, log=log)
    run.context.learned_weights = (1.0,) * SCALES  # any weights cost the same as the learned ones
    threads = torch.get_num_threads()
    log(f"measuring on {threads} torch threads ...")
    measured: dict = {"threads": threads}
    projected: dict[str, float] = {}
    source = config.saliency_size or run.model_size
    eval_split, eval_size = run._evaluation_split()
    n_train, n_val, n_eval = len(run.train), len(run.val), len(eval_split)

    def saliency_times(methods: list[Method], size: int) -> dict[str, float]:
        x = run.preprocess(run.images(run.val, size)[:images])
        ids = run.val.ids[:images].tolist()
        times = {}
        for method in methods:
            times[method.name] = time_methods(run.context, [method], x, ids, batch_size=images)[method.name]
            log(f"  saliency {method.name:28s} at {size} px: {1000 * times[method.name]:9.1f} ms/image")
        return times

    retraining = any(p in config.protocols for p in ("kar-roar", "layers"))
    if retraining:
        # Every k-th image, so that every class is present (train_classifier sizes the targets from the labels).
        pick = np.unique(np.linspace(0, n_train - 1, min(128, n_train)).round().astype(int))
        pick_val = np.unique(np.linspace(0, n_val - 1, min(64, n_val)).round().astype(int))
        train_images = run.images(run.train, config.image_size)[pick]
        val_images = run.images(run.val, config.image_size)
        training = run.training_config()
        network = build_network(run.network, len(run.train.classes))
        history = train_classifier(network, train_images, run.train.labels[pick], val_images[pick_val], run.val.labels[pick_val],
                                   tuple(run.spec.mean), tuple(run.spec.std),
                                   replace(training, epochs=3, warmup_epochs=1, validate_every=1), log=lambda line: None,
                                   device=run.device)
        per_image = min(h["seconds"] for h in history[1:]) / len(pick)  # after the first epoch's warm-up; includes predicting 64 images
        started = time.perf_counter()
        from geosal.models.training import predict

        predict(network, val_images, tuple(run.spec.mean), tuple(run.spec.std), bf16=training.bf16)
        predict_seconds = time.perf_counter() - started
        epoch = per_image * n_train + predict_seconds / config.validate_every
        measured["retraining_epoch_seconds"] = epoch
        log(f"  retraining {run.network} on {run.device}: {epoch:.1f} s per epoch at {config.image_size} px ({n_train} training "
            f"images; {n_val} validation images predicted in {predict_seconds:.1f} s, every {config.validate_every} epochs)")

    if "kar-roar" in config.protocols:
        methods = get_methods(config.methods)
        times = saliency_times(methods, source)
        cells = [c for c in plan_cells([m.name for m in methods], config.percentages, config.share_random, config.reference,
                                       config.retrain_seeds) if c.same_as is None]
        saliency = _group_seconds(methods, times) * (n_train + n_val)
        projected["kar-roar"] = saliency + len(cells) * config.epochs * measured["retraining_epoch_seconds"]
        measured["kar-roar"] = {"saliency_seconds": saliency, "retrainings": len(cells), "saliency_ms_per_image": {
            k: round(1000 * v, 1) for k, v in times.items()}}
        log(f"kar-roar: saliency {saliency / 60:.0f} min + {len(cells)} retrainings ({len(config.retrain_seeds)} seeds) x "
            f"{config.epochs} epochs = {projected['kar-roar'] / 3600:.2f} h")
    if "layers" in config.protocols:
        names = layer_methods(config.layer_statistics)
        methods = [METHODS[n] for n in names]
        groups = {}
        for m in methods:
            groups.setdefault(m.group, m)
        times = saliency_times(list(groups.values()), source)
        saliency = sum(times.values()) * (n_train + n_val)
        cells = layer_cells(names, config.layer_kar, config.layer_roar, config.layer_seeds)
        projected["layers"] = saliency + len(cells) * config.epochs * measured["retraining_epoch_seconds"]
        log(f"layers: saliency {saliency / 60:.0f} min + {len(cells)} retrainings = {projected['layers'] / 3600:.2f} h")
    if "road" in config.protocols or "deletion" in config.protocols:
        methods = get_methods(config.eval_methods)
        times = saliency_times(methods, eval_size)
        saliency = _group_seconds(methods, times) * n_eval
        x = run.preprocess(run.images(eval_split, eval_size)[:images])
        ids = eval_split.ids[:images].tolist()
        run.classify_logits(x)
        started = time.perf_counter()
        run.classify_logits(x)
        forward = (time.perf_counter() - started) / images
        measured["eval_forward_ms_per_image"] = 1000 * forward
        log(f"  forward pass at {eval_size} px: {1000 * forward:.1f} ms/image")
        shared = False
        if "road" in config.protocols:
            maps = METHODS["smoe_prior"](run.context, x, ids).cpu()
            x = x.cpu()
            impute = []
            for p in config.percentages:
                for order in ("morf", "lerf"):
                    keep = removal_keep_mask(maps, p, order, ids)
                    started = time.perf_counter()
                    impute_batch(x, keep, config.road_noise, ids)
                    impute.append((time.perf_counter() - started) / images)
            per_method = n_eval * sum(impute) + n_eval * len(impute) * forward
            projected["road"] = saliency + len(methods) * per_method
            shared = True
            measured["road_imputation_ms_per_image"] = round(1000 * float(np.mean(impute)), 1)
            log(f"road: saliency {saliency / 60:.0f} min + {len(methods)} methods x {per_method:.0f} s "
                f"(imputation {1000 * np.mean(impute):.0f} ms/image on average) = {projected['road'] / 3600:.2f} h")
        if "deletion" in config.protocols:
            per_method = n_eval * 2 * (config.deletion_steps + 1) * forward
            projected["deletion"] = (0 if shared else saliency) + len(methods) * per_method
            log(f"deletion: {len(methods)} methods x {per_method:.0f} s" + ("" if shared else f" + saliency {saliency / 60:.0f} min")
                + f" = {projected['deletion'] / 3600:.2f} h")
    total = sum(projected.values())
    log(f"projected total: {total / 3600:.2f} h on {threads} threads ({run.device}), for a full run from scratch "
        "(a real run skips cached maps and finished cells; an interrupted run resumes at the first unfinished cell)")
    return {"measured": measured, "projected_seconds": projected}
