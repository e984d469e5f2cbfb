"""A tiny end-to-end run of every protocol: masks, retraining, ROAD, deletion, reports, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from geosal.cli import build_parser
from geosal.cli import main as geosal_main
from geosal.cli.evaluate import command_line, config_from_args
from geosal.evaluation.cells import CellStore, SettingsMismatch
from geosal.evaluation.config import EvaluationConfig
from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.layer_weights import learned_weights
from geosal.evaluation.runner import Evaluation, run_evaluation
from geosal.models.device import native_bf16
from tests.paths import UCMERCED

TINY = [
    "--methods", "random,smoe_prior", "--percentages", "50", "--image-size", "16", "--saliency-size", "32",
    "--epochs", "1", "--train-per-class", "2", "--val-per-class", "1", "--eval-methods", "random,smoe_prior",
    "--eval-size", "32", "--eval-per-class", "1", "--deletion-steps", "4", "--timing-images", "2", "--batch-size", "32",
    "--protocol", "kar-roar", "road", "deletion", "--retrain-seeds", "0,1", "--validate-every", "1",
    "--threads", "1",  # a loaded 2-core machine: one thread avoids OpenMP oversubscription
]


def tiny_args(tmp_path: Path, checkpoint: str, *extra: str) -> list[str]:
    return ["evaluate", "--data", str(UCMERCED), "--model", checkpoint, "--results", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), *TINY, *extra]


def test_tiny_run_resumes_and_writes_every_report(tmp_path, tiny_checkpoint):
    args = build_parser().parse_args(tiny_args(tmp_path, tiny_checkpoint))
    config = config_from_args(args)
    lines: list[str] = []
    results = run_evaluation(config, command=command_line(config), log=lines.append)
    log = "\n".join(lines)
    assert "retraining from scratch" in log and "shares kar 50%" in log  # random ROAR 50% = KAR 50%

    kar_roar = results / "kar_roar"
    cells = sorted(p.name for p in (kar_roar / "cells").glob("*.json"))
    assert len(cells) == 2 * 5  # per retraining seed: unmasked reference + random kar/roar + smoe kar/roar
    modified = {p: p.stat().st_mtime_ns for p in results.rglob("cells/*.json")}
    rows = [json.loads((kar_roar / "cells" / f"smoe_prior__roar__0.5__s{seed}.json").read_text()) for seed in (0, 1)]
    for seed, row in enumerate(rows):
        assert 0 <= row["accuracy"] <= 1 and row["train_images"] == 42 and row["val_images"] == 21 and row["image_size"] == 16
        assert row["seed"] == seed and len(row["correct"]) == len(row["val_ids"]) == 21
        assert row["accuracy"] == sum(row["correct"]) / 21  # the per-image outcomes are the accuracy's
        assert row["bf16"] is native_bf16("cpu")  # bfloat16 autocast only where the CPU computes it
    assert rows[0]["history"] != rows[1]["history"]  # two seeds are two different retrainings
    first_call = json.loads((kar_roar / "run.json").read_text())
    assert first_call["cells_computed_this_call"] == 8 and first_call["wall_seconds_all_calls"] > 0
    assert first_call["device"] == "cpu" and first_call["bf16"] is native_bf16("cpu")
    assert "bf16" not in json.loads((kar_roar / "settings.json").read_text())["training"]  # a device's, not the cells'
    road_row = json.loads((results / "road" / "cells" / "smoe_prior__morf__0.5.json").read_text())
    assert len(road_row["correct"]) == len(road_row["ids"]) == road_row["images"] == 21
    deletion_row = json.loads((results / "deletion" / "cells" / "smoe_prior__deletion.json").read_text())
    assert len(deletion_row["areas"]) == 21 and abs(sum(deletion_row["areas"]) / 21 - deletion_row["auc"]) < 1e-4

    for name in ("README.md", "kar_roar.md", "kar_roar.csv", "kar_roar.png", "road.md", "road.csv", "road.png",
                 "deletion.md", "deletion.csv", "deletion.png", "timing.md", "timing.csv"):
        path = results / name
        assert path.exists() and 0 < path.stat().st_size < 1_000_000, name
    with (results / "kar_roar.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["method"], r["mode"]) for r in rows} == {("unmasked", "none"), ("random", "kar"), ("random", "roar"),
                                                        ("smoe_prior", "kar"), ("smoe_prior", "roar")}
    readme = (results / "README.md").read_text()
    assert "geosal evaluate" in readme and "--epochs 1" in readme and "What is reduced relative to the paper" in readme
    assert "SMOE Scale + Prior Layer Weights" in (results / "kar_roar.md").read_text()
    road = {(r["method"], r["order"]) for r in csv.DictReader((results / "road.csv").open())}
    assert road == {("original", "none"), ("random", "morf"), ("random", "lerf"), ("smoe_prior", "morf"), ("smoe_prior", "lerf")}
    assert len(list(csv.DictReader((results / "deletion.csv").open()))) == 4

    # Second call, through the geosal command line: every cell is skipped, nothing is retrained.
    assert geosal_main(tiny_args(tmp_path, tiny_checkpoint)) == 0
    assert {p: p.stat().st_mtime_ns for p in results.rglob("cells/*.json")} == modified
    assert json.loads((kar_roar / "run.json").read_text()) == first_call  # the record of the call that computed the cells

    # A new percentage adds only the new cells.
    more = tiny_args(tmp_path, tiny_checkpoint, "--protocol", "kar-roar")
    more[more.index("--percentages") + 1] = "50,90"
    assert geosal_main(more) == 0
    # KAR and ROAR 90% for both methods (random ROAR 90% would share KAR 10%, which is not planned).
    assert len(list((kar_roar / "cells").glob("*.json"))) == 2 * (5 + 4)
    resumed = json.loads((kar_roar / "run.json").read_text())
    assert resumed["cells_computed_this_call"] == 8 and resumed["wall_seconds_all_calls"] > first_call["wall_seconds_all_calls"]
    assert resumed["saliency_bulk_timing"]["val"].keys() >= first_call["saliency_bulk_timing"]["val"].keys()  # earlier timings kept
    assert {p: p.stat().st_mtime_ns for p in modified} == modified


def test_changed_settings_are_refused(tmp_path):
    store = CellStore(tmp_path / "p", {"epochs": 1})
    store.put({"accuracy": 0.5}, "m", "kar", 0.5)
    assert CellStore(tmp_path / "p", {"epochs": 1}).has("m", "kar", 0.5)
    with pytest.raises(SettingsMismatch, match="epochs"):
        CellStore(tmp_path / "p", {"epochs": 2})


def test_layers_protocol_scores_per_layer(tmp_path, tiny_checkpoint):
    args = build_parser().parse_args(tiny_args(tmp_path, tiny_checkpoint, "--protocol", "layers", "--layer-statistics", "smoe"))
    results = run_evaluation(config_from_args(args), log=lambda line: None)
    assert len(list((results / "layers" / "cells").glob("*.json"))) == 20  # (random + smoe) x L1..L5 x (KAR, ROAR)
    text = (results / "layers.md").read_text()
    assert "SMOE Scale" in text and "Difference score" in text
    assert (results / "layers.png").stat().st_size > 0


def test_learned_weights_flow_from_the_layers_cells_into_the_retraining(tmp_path, tiny_checkpoint):
    """smoe_learned takes its weights from the layers protocol's cells (here written by hand) and is retrained."""
    args = build_parser().parse_args(tiny_args(tmp_path, tiny_checkpoint, "--protocol", "kar-roar", "--methods",
                                               "random,smoe_learned", "--retrain-seeds", "0", "--no-reference",
                                               "--val-per-class", "2"))  # even and odd ids: derivation and held-apart images
    config = config_from_args(args)
    evaluation = Evaluation(config, log=lambda line: None)
    layers = CellStore(config.results / "layers", evaluation.retraining_settings("layers"))
    ids = [int(i) for i in evaluation.val.ids]
    # Per layer k: the SMOE map keeps 2k of the 42 images right in KAR against 0 for random; ROAR equal: D_k grows with k.
    for k in range(1, 6):
        for method, right in ((f"smoe_L{k}", k), (f"random_L{k}", 0)):
            for mode, fraction in (("kar", config.layer_kar), ("roar", config.layer_roar)):
                correct = [1 if i < 2 * right and mode == "kar" else 0 for i in range(len(ids))]
                layers.put({"protocol": "layers", "method": method, "label": method, "mode": mode, "fraction": fraction,
                            "seed": 0, "accuracy": sum(correct) / len(ids), "correct": correct, "val_ids": ids},
                           method, mode, fraction, "s0")
    assert evaluation.learned_weights() == learned_weights(list(layers.rows()))[0]
    lines: list[str] = []
    results = run_evaluation(config, log=lines.append)
    run = json.loads((results / "kar_roar" / "run.json").read_text())
    assert run["learned_weights"] == list(evaluation.learned_weights()) and run["learned_weights"][-1] == 1.0
    assert (results / "kar_roar" / "cells" / "smoe_learned__kar__0.5__s0.json").exists()
    assert "Learned layer weights" in (results / "README.md").read_text() and (results / "weights.md").exists()
    row = json.loads((results / "kar_roar" / "cells" / "smoe_learned__kar__0.5__s0.json").read_text())
    assert row["learned_weights"] == run["learned_weights"]  # every cell says which weights made its maps

    # The layers cells change (a second seed finished, smoe_L1 worse): old smoe_learned cells are not mixed with new ones.
    for cell in list(layers.rows()):
        worse = cell["method"] == "smoe_L1" and cell["mode"] == "kar"
        layers.put({**cell, "seed": 1, **({"correct": [0] * len(ids), "accuracy": 0.0} if worse else {})},
                   cell["method"], cell["mode"], cell["fraction"], "s1")
    with pytest.raises(EvaluationError, match="made with layer weights"):
        run_evaluation(config, log=lambda line: None)


def test_command_line_round_trip(tmp_path, tiny_checkpoint):
    parser = build_parser()
    config = config_from_args(parser.parse_args(tiny_args(tmp_path, tiny_checkpoint, "--protocol", "road", "--no-bf16")))
    words = command_line(config).split()
    assert words[:2] == ["geosal", "evaluate"]
    again = config_from_args(parser.parse_args(words[1:]))
    assert again == config


def test_defaults_are_the_reduced_protocol():
    parser = build_parser()
    config = config_from_args(parser.parse_args(["evaluate"]))
    assert config.protocols == ("layers", "kar-roar")  # ROAD and deletion: --protocol road deletion
    assert config.retrain_seeds == (0, 1, 2) and config.layer_seeds == (0,) and config.network == "resnet10"
    assert config.percentages == (0.1, 0.3, 0.5, 0.7, 0.9)
    assert command_line(config) == "geosal evaluate"
    assert isinstance(EvaluationConfig(data=Path(".")).to_dict()["results"], str)
    assert not str(config.to_dict()["data"]).startswith("/")  # never an absolute machine path in results
