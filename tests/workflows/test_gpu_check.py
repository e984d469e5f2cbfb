"""``workflows/gpu_check.py --dry-run``: every step of the GPU check runs (on the CPU, tiny) and records its figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import PROJECT, SCENES

pytestmark = pytest.mark.slow  # about two minutes on 2 cores: a dozen whole geosal runs and loops


def test_gpu_check_dry_run_records_every_step(tmp_path):
    assert SCENES.is_dir()
    out = tmp_path / "gpu"
    done = subprocess.run([sys.executable, "-m", "workflows.gpu_check", "--dry-run", "--out", str(out)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == {"environment.json", "precision.json", "layouts.json", "compare.txt",
                                               "training.txt", "evaluate_tiny.log", "summary.md"}
    precision = json.loads((out / "precision.json").read_text())["precisions"]
    assert set(precision) == {"none", "bf16"}
    assert min(precision["none"]["correlation_to_cpu_float32"]) > 0.9999 and precision["none"]["non_finite"] == 0
    layouts = json.loads((out / "layouts.json").read_text())
    assert all(row["returncode"] == 0 for row in layouts) and len(layouts) == 2
    compare = (out / "compare.txt").read_text()
    assert compare.count("Grad-CAM loop / geosal in-process") == 2 and "failed" not in compare
    assert "dry run" in (out / "summary.md").read_text()
    training = (out / "training.txt").read_text()
    assert "batched / per-image epochs per minute" in training and "every protocol: ok" in training, training
