"""GPU benchmark: throughput and SMOE overhead on a CUDA device.

    python -m workflows.bench_gpu [--batch 32] [--size 224] [--rounds 20]

For ResNet-50 on the first GPU, in float32 and under bfloat16 / float16
autocast (statistics always in float32): forward images per second, the
extra time of the five SMOE maps (hooks with the fused kernel, and compiled
into the graph), and the extra allocator memory per image
(``torch.cuda.max_memory_allocated``). Exits with a clear message when no GPU
is visible.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torchvision

from geosal.saliency import ScaleHooks
from geosal.saliency.statistics import STATISTICS
from geosal.saliency.traced import TracedSaliencyNetwork, trace_with_layers

LAYERS = ["relu", "layer1", "layer2", "layer3", "layer4"]


def cuda_seconds(function, rounds: int) -> float:
    """Median seconds per call, measured with CUDA events after a warm-up."""
    for _ in range(3):
        function()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return sorted(times)[len(times) // 2]


def peak_bytes(function) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    function()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible; run this on a GPU machine", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    model = torchvision.models.resnet50().eval().to(device)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    statistic = STATISTICS["smoe_scale"]
    compiled_plain = torch.compile(trace_with_layers(model, []))
    compiled_smoe = torch.compile(TracedSaliencyNetwork(model, LAYERS, statistic))
    print(f"{torch.cuda.get_device_name()}, ResNet-50, batch {args.batch}, {args.size}x{args.size}")
    print(f"{'precision':10s} {'forward img/s':>14s} {'SMOE hooks':>11s} {'SMOE compiled':>14s} {'extra bytes/img':>16s}")
    for precision, dtype in (("float32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        def run(fn, dtype=dtype):
            def call():
                with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                    return fn()
            return call

        def hooked():
            with ScaleHooks(model, LAYERS, statistic):
                return model(images)

        forward = cuda_seconds(run(lambda: model(images)), args.rounds)
        with_hooks = cuda_seconds(run(hooked), args.rounds)
        plain_c = cuda_seconds(run(lambda: compiled_plain(images)), args.rounds)
        smoe_c = cuda_seconds(run(lambda: compiled_smoe(images)), args.rounds)
        extra = (peak_bytes(run(hooked)) - peak_bytes(run(lambda: model(images)))) / args.batch
        print(f"{precision:10s} {args.batch / forward:14.1f} {100 * (with_hooks / forward - 1):10.2f}% "
              f"{100 * (smoe_c / plain_c - 1):13.2f}% {extra:16,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
