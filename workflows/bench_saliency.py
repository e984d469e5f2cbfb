"""Benchmark: what SMOE saliency costs next to the forward pass and the gradient methods.

    python -m workflows.bench_saliency [--batch 8] [--size 224] [--rounds 7]

One run, one machine, ratios measured side by side (ResNet-50, random weights:
timing does not depend on the weights). Each variant is timed ``rounds``
times, interleaved with the others, and the median is reported. Memory is
measured at the allocator level with the PyTorch profiler: the bytes allocated
inside the SMOE statistic calls and still alive, at their peak, per image.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch.profiler import ProfilerActivity, profile, record_function

from geosal.saliency import FastCAM, ScaleHooks
from geosal.saliency.combine import combine
from geosal.saliency.normalize import normal_cdf
from geosal.saliency.statistics import Statistic, smoe_scale_eager, smoe_scale_fused
from geosal.saliency.traced import TracedSaliencyNetwork, trace_with_layers

LAYERS = ["relu", "layer1", "layer2", "layer3", "layer4"]
PAPER_BYTES_PER_TILE = 117_000


def median_seconds(function: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed_variants(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per variant, rounds interleaved so drift hits all variants alike."""
    for function in variants.values():
        function()  # warm-up (and compilation)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, function in variants.items():
            started = time.perf_counter()
            function()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def seconds_inside_forward(model: torch.nn.Module, images: torch.Tensor, statistic: Callable, rounds: int) -> float:
    """Median seconds spent in the statistic calls themselves during real forward
    passes (the activations are as warm in cache as they are in production)."""
    spent: list[float] = []

    def timed(x: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        result = statistic(x)
        spent.append(time.perf_counter() - started)
        return result

    stat = Statistic("timed", "timed", timed)
    totals = []
    for _ in range(rounds + 1):
        spent.clear()
        with torch.no_grad(), ScaleHooks(model, LAYERS, stat):
            model(images)
        totals.append(sum(spent))
    return statistics.median(totals[1:])


def smoe_live_bytes(model: torch.nn.Module, images: torch.Tensor, statistic: Callable) -> int:
    """Peak bytes allocated inside the statistic calls and not yet freed, over one forward pass."""
    stat = Statistic("bench", "bench", lambda x: _annotated(statistic, x))
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with ScaleHooks(model, LAYERS, stat):
            model(images)
    events = prof.profiler.kineto_results.events()
    ranges = [(e.start_ns(), e.end_ns()) for e in events if e.name() == "geosal.smoe"]
    memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    live = peak = 0
    for start, nbytes in memory:
        if any(a <= start <= b for a, b in ranges):
            live += nbytes
            peak = max(peak, live)
    return peak


def _annotated(statistic: Callable, x: torch.Tensor) -> torch.Tensor:
    with record_function("geosal.smoe"):
        return statistic(x)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--smoothgrad-rounds", type=int, default=2)
    args = parser.parse_args(argv)

    from captum.attr import GuidedBackprop, NoiseTunnel
    from pytorch_grad_cam import GradCAMPlusPlus

    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    images = torch.randn(args.batch, 3, args.size, args.size)
    fused = Statistic("fused", "fused", smoe_scale_fused)
    eager = Statistic("eager", "eager", smoe_scale_eager)

    activations: list[torch.Tensor] = []
    handles = [model.get_submodule(n).register_forward_hook(lambda m, i, o: activations.append(o)) for n in LAYERS]
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    maps = [smoe_scale_fused(a) for a in activations]

    def forward():
        with torch.no_grad():
            return model(images)

    def forward_with(statistic):
        def run():
            with torch.no_grad(), ScaleHooks(model, LAYERS, statistic):
                return model(images)
        return run

    compiled_plain = torch.compile(trace_with_layers(model, []))
    compiled_smoe = torch.compile(TracedSaliencyNetwork(model, LAYERS, fused))

    def in_graph(network):
        def run():
            with torch.no_grad():
                return network(images)
        return run

    print(f"ResNet-50, batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} threads; medians of {args.rounds} rounds")
    t = timed_variants(
        {
            "forward": forward,
            "forward + SMOE hooks (fused kernel)": forward_with(fused),
            "forward + SMOE hooks (eager Eq. 2)": forward_with(eager),
            "SMOE fused kernel on the 5 activations": lambda: [smoe_scale_fused(a) for a in activations],
            "SMOE eager Eq. 2 on the 5 activations": lambda: [smoe_scale_eager(a) for a in activations],
            "normalise + combine 5 maps to input size": lambda: combine([normal_cdf(m) for m in maps], (args.size, args.size)),
            "compiled forward": in_graph(compiled_plain),
            "compiled forward with SMOE in the graph": in_graph(compiled_smoe),
        },
        args.rounds,
    )
    t["SMOE fused kernel inside the forward (timed in the hooks)"] = seconds_inside_forward(model, images, smoe_scale_fused, args.rounds)
    t["SMOE eager Eq. 2 inside the forward (timed in the hooks)"] = seconds_inside_forward(model, images, smoe_scale_eager, args.rounds)
    gbp = GuidedBackprop(model)
    gradcam = GradCAMPlusPlus(model=model, target_layers=[model.layer4])
    fast_cam = FastCAM(model, layers=LAYERS)
    with torch.no_grad():
        targets = model(images).argmax(1)
    t.update(
        timed_variants(
            {
                "Fast-CAM (SMOE x Grad-CAM++, head-only gradients)": lambda: fast_cam(images, target=targets),
                "Guided Backprop (captum)": lambda: gbp.attribute(images.clone().requires_grad_(True), target=targets),
                "Grad-CAM++ (pytorch-grad-cam)": lambda: gradcam(input_tensor=images, targets=None),
            },
            max(2, args.rounds // 2),
        )
    )
    smoothgrad = NoiseTunnel(gbp)
    t["Guided Backprop + SmoothGrad^2, 15 samples"] = median_seconds(
        lambda: smoothgrad.attribute(
            images.clone().requires_grad_(True), nt_type="smoothgrad_sq", nt_samples=15,
            nt_samples_batch_size=args.batch, stdevs=0.15, target=targets,
        ),
        args.smoothgrad_rounds,
    )

    base = t["forward"]
    smoe = t["SMOE fused kernel inside the forward (timed in the hooks)"]
    print(f"\n{'variant':58s} {'seconds':>9s} {'vs forward':>11s}")
    for name, seconds in t.items():
        print(f"{name:58s} {seconds:9.4f} {100 * seconds / base:10.2f}%")

    print("\nSMOE cost as a share of the forward pass (all five maps):")
    print(f"  fused kernel, timed inside the forward  {100 * smoe / base:6.2f}%   (paper's FLOP estimate: 0.3-1.0%)")
    print(f"  eager Eq. 2, timed inside the forward   {100 * t['SMOE eager Eq. 2 inside the forward (timed in the hooks)'] / base:6.2f}%")
    print(f"  fused kernel on cold activations        {100 * t['SMOE fused kernel on the 5 activations'] / base:6.2f}%")
    print(f"  eager Eq. 2 on cold activations         {100 * t['SMOE eager Eq. 2 on the 5 activations'] / base:6.2f}%")
    print(f"  hooks + fused kernel, forward difference {100 * (t['forward + SMOE hooks (fused kernel)'] / base - 1):6.2f}%")
    print(f"  hooks + eager Eq. 2, forward difference  {100 * (t['forward + SMOE hooks (eager Eq. 2)'] / base - 1):6.2f}%")
    compiled = t["compiled forward"]
    in_graph = 100 * (t["compiled forward with SMOE in the graph"] / compiled - 1)
    print(f"  compiled, SMOE inside the graph         {in_graph:6.2f}%   "
          f"(compiled forward is {100 * (1 - compiled / base):.0f}% faster than eager)")
    print(f"  normalise + combine                     {100 * t['normalise + combine 5 maps to input size'] / base:6.2f}%")

    print("\nExtra cost over the forward pass, relative to SMOE (fused kernel):")
    for name in ["Guided Backprop (captum)", "Guided Backprop + SmoothGrad^2, 15 samples", "Grad-CAM++ (pytorch-grad-cam)",
                 "Fast-CAM (SMOE x Grad-CAM++, head-only gradients)"]:
        extra = t[name] - base
        print(f"  {name:52s} {extra / smoe:9.0f}x")

    fused_bytes = smoe_live_bytes(model, images, smoe_scale_fused) / args.batch
    eager_bytes = smoe_live_bytes(model, images, smoe_scale_eager) / args.batch
    maps_bytes = sum(m[0].numel() * m.element_size() for m in maps)
    print(f"\nExtra memory per {args.size}x{args.size} tile (allocator level, peak live bytes inside the SMOE calls):")
    print(f"  fused kernel  {fused_bytes:12,.0f} B   "
          f"(the five float32 maps alone: {maps_bytes:,} B; paper: about {PAPER_BYTES_PER_TILE:,} B)")
    print(f"  eager Eq. 2   {eager_bytes:12,.0f} B")


if __name__ == "__main__":
    main()
