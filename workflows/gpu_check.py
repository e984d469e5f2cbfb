"""First contact with a GPU: one script, about ten minutes, every figure the GPU path needs, in one folder.

    python -m workflows.gpu_check [--out results/gpu]      # on a machine with an NVIDIA GPU
    python -m workflows.gpu_check --dry-run --out DIR      # the same steps on the CPU, tiny (what CI runs)

Steps, each recorded into ``--out``:

1. ``environment.json``: the GPU, driver and CUDA versions (``nvidia-smi``), torch and its CUDA / cuDNN;
2. ``precision.json``: ms per batch of real pipeline tiles for float32, tf32, bf16 and fp16 autocast, each
   scale's correlation with a CPU float32 reference (target >= 0.99) and the non-finite count (target 0)
   (:mod:`workflows.bench_gpu`);
3. ``layouts.json``: ``geosal run`` end to end on an 8192^2 mosaic at native resolution, in-process and on a
   local cluster with 1, 2 and 4 GPU slots: wall time, tiles/s and the GPU's mean utilisation (sampled with
   ``nvidia-smi``);
4. ``compare.txt``: the comparison of :mod:`workflows.bench_pipeline` on the GPU: plain tiled inference and a
   per-tile Grad-CAM loop against geosal, with the shipped model and with a tiny network;
5. ``training.txt``: the retraining throughput of ``geosal evaluate`` (:mod:`workflows.bench_training`: batched
   on-device augmentation against a per-image loop, ResNet-10 at 64 px and ResNet-18 at 128 px) and a tiny
   ``geosal evaluate --device cuda`` run of every protocol (saliency, retraining, ROAD, deletion on the GPU);
6. ``summary.md``: the figures above in one page.

The full faithfulness protocol on the GPU is ``make evaluate-gpu`` (hours; see docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


class UtilisationSampler:
    """The GPU's utilisation in percent, sampled by ``nvidia-smi`` every 250 ms while the block runs."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.samples: list[float] = []

    def __enter__(self) -> UtilisationSampler:
        if self.enabled:
            self._process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "250"],
                stdout=subprocess.PIPE, text=True)
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            if line.strip().split(",")[0].strip().isdigit():
                self.samples.append(float(line.split(",")[0]))

    def __exit__(self, *exc_info) -> None:
        if self.enabled:
            self._process.terminate()
            self._process.wait()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def environment(dry_run: bool) -> dict:
    """What the machine is: GPU, driver, CUDA, torch."""
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             "cuda_available": torch.cuda.is_available(), "dry_run": dry_run}
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                                "--format=csv,noheader"], capture_output=True, text=True)
        found["nvidia_smi"] = query.stdout.strip() or query.stderr.strip()
    if torch.cuda.is_available():
        found["device"] = torch.cuda.get_device_name()
    return found


def failure(done: subprocess.CompletedProcess) -> str:
    """Why a step's command failed: the last line it wrote to stderr, else its exit status."""
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def layouts(size: int, tile: int, halo: int, device: str, dry_run: bool) -> list[dict]:
    """``geosal run`` end to end, in-process and on local clusters with several GPU slots."""
    from workflows.mosaic import mosaic

    source = PROJECT.parent / "shared" / "data" / "scenes" / "manila_oam_10cm.tif"
    runs = [("in-process", ["--scheduler", "in-process"])]
    runs += [(f"local cluster, {slots} GPU slot(s)", ["--gpu", "--gpu-slots", str(slots)] if not dry_run else [])
             for slots in ((1, 2, 4) if not dry_run else (1,))]
    found = []
    with tempfile.TemporaryDirectory() as folder:
        scene = mosaic(source, Path(folder) / "mosaic.tif", size)
        for name, options in runs:
            command = [sys.executable, "-m", "geosal.cli", "run", str(scene), str(Path(folder) / "out"), "--overwrite",
                       "--resample", "native", "--tile", str(tile), "--halo", str(halo), "--device", device, *options]
            with UtilisationSampler(not dry_run) as sampler:
                started = time.perf_counter()
                done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
                seconds = time.perf_counter() - started
            tiles = (size // tile) ** 2
            found.append({"layout": name, "returncode": done.returncode, "seconds": seconds, "tiles": tiles,
                          "tiles_per_second": tiles / seconds, "gpu_utilisation_percent": sampler.mean,
                          "error": failure(done) if done.returncode else None})
    return found


def compare(device: str, dry_run: bool) -> str:
    """The output of ``workflows.bench_pipeline compare`` on ``device``, shipped model then tiny network."""
    sizes = ["--sizes", "1024", "--native-size", "0", "--repeats", "1"] if dry_run else \
        ["--sizes", "8192", "--native-size", "4096", "--repeats", "3"]
    text = []
    for extra in ([], ["--tiny"]):
        command = [sys.executable, "-m", "workflows.bench_pipeline", "compare", "--device", device, *sizes, *extra]
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
        text.append(done.stdout + (f"\nfailed: {failure(done)}" if done.returncode else ""))
    return "\n".join(text)


def training(device: str, dry_run: bool, out: Path) -> str:
    """:mod:`workflows.bench_training` on ``device`` and a tiny ``geosal evaluate`` of every protocol there."""
    settings = [["--network", "resnet10", "--size", "64"], ["--network", "resnet18", "--size", "128"]]
    extra = ["--images", "128", "--repeats", "1"] if dry_run else ["--repeats", "3"]
    text = []
    for arm in settings[:1] if dry_run else settings:
        command = [sys.executable, "-m", "workflows.bench_training", "--device", device, *arm, *extra]
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
        text.append(done.stdout + (f"\nfailed: {failure(done)}" if done.returncode else ""))
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "workflows.evaluate", "--device", device, "--protocol", "all",
                   "--results", str(Path(folder) / "results"), "--cache", str(Path(folder) / "cache"),
                   "--methods", "random,smoe_prior,gradient_sg2", "--eval-methods", "random,smoe_prior,gradcampp",
                   "--percentages", "50", "--retrain-seeds", "0,1", "--epochs", "2", "--train-per-class", "4",
                   "--val-per-class", "2", "--eval-per-class", "1", "--image-size", "32", "--saliency-size", "64",
                   "--eval-size", "64", "--deletion-steps", "4", "--timing-images", "2", "--nt-samples", "2"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
        (out / "evaluate_tiny.log").write_text(done.stdout + done.stderr)
    status = "ok" if done.returncode == 0 else f"failed ({failure(done)})"
    text.append(f"tiny geosal evaluate --device {device}, every protocol: {status} in {time.perf_counter() - started:.0f} s")
    return "\n".join(text)


def summary(found: dict) -> str:
    """The figures as Markdown."""
    env = found["environment"]
    lines = [f"# GPU check ({'dry run on the CPU' if env['dry_run'] else env.get('device', 'GPU')})", "",
             f"torch {env['torch']} (CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}); nvidia-smi: {env.get('nvidia_smi', '-')}",
             "", "## Precision (real pipeline tiles, shipped ResNet-18)", "",
             "| precision | ms / batch | bare forward ms | tiles/s | min correlation with CPU float32 | non-finite |",
             "| --- | --: | --: | --: | --: | --: |"]
    for name, row in found["precision"]["precisions"].items():
        lines.append(f"| {name} | {row['ms_per_batch']:.1f} | {row['bare_forward_ms_per_batch']:.1f} | "
                     f"{row['tiles_per_second']:.1f} | {min(row['correlation_to_cpu_float32']):.4f} | {row['non_finite']} |")
    lines += ["", "## Layouts (geosal run, native resolution)", "", "| layout | s | tiles/s | GPU utilisation % |",
              "| --- | --: | --: | --: |"]
    for row in found["layouts"]:
        utilisation = "-" if row["gpu_utilisation_percent"] is None else f"{row['gpu_utilisation_percent']:.0f}"
        status = "" if row["returncode"] == 0 else f" (failed: {row['error']})"
        lines.append(f"| {row['layout']}{status} | {row['seconds']:.1f} | {row['tiles_per_second']:.1f} | {utilisation} |")
    lines += ["", "## Against what a user would run (workflows.bench_pipeline compare)", "", "```", found["compare"].strip(),
              "```", ""]
    lines += ["## Retraining for geosal evaluate (workflows.bench_training)", "", "```", found["training"].strip(), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "results" / "gpu")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU, tiny: checks the script works")
    args = parser.parse_args(argv)
    import torch

    from workflows import bench_gpu

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible (torch.cuda.is_available() is False); use --dry-run on a CPU machine",
              file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    found = {"environment": environment(args.dry_run)}
    (args.out / "environment.json").write_text(json.dumps(found["environment"], indent=2))
    precisions = ("none", "bf16") if args.dry_run else bench_gpu.PRECISIONS
    size, tile, halo, batch = (512, 128, 32, 2) if args.dry_run else (4096, 512, 64, 16)
    found["precision"] = bench_gpu.run(device, batch, 1 if args.dry_run else 10, size, tile, halo, precisions)
    (args.out / "precision.json").write_text(json.dumps(found["precision"], indent=2))
    found["layouts"] = layouts(512 if args.dry_run else 8192, tile, halo, device, args.dry_run)
    (args.out / "layouts.json").write_text(json.dumps(found["layouts"], indent=2))
    found["compare"] = compare(device, args.dry_run)
    (args.out / "compare.txt").write_text(found["compare"])
    found["training"] = training(device, args.dry_run, args.out)
    (args.out / "training.txt").write_text(found["training"])
    (args.out / "summary.md").write_text(summary(found))
    print(summary(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
