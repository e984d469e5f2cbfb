"""A traced, compiled copy of a network that returns its scale maps.

For the fastest path the network is traced with ``torch.fx`` into a graph that
also returns the scale-end activations, the statistic is applied inside the
same module, and the whole thing goes through ``torch.compile``: the
reductions are then fused with the network's own kernels and no activation is
materialised for them. The traced graph shares the network's parameters and
submodules (so train/eval mode follows the original), and the original model
gets no hooks at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, fx, nn

from geosal.saliency.statistics import Statistic


class TracingError(RuntimeError):
    """The network cannot be traced so that it returns the requested layers."""


class _LayersAsLeaves(fx.Tracer):
    """Keeps each requested layer as one ``call_module`` node (containers included)."""

    def __init__(self, layers: Sequence[str]):
        super().__init__()
        self.layers = set(layers)

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return qualified_name in self.layers or super().is_leaf_module(module, qualified_name)


def trace_with_layers(model: nn.Module, layers: Sequence[str]) -> fx.GraphModule:
    """Trace ``model`` into a graph module returning ``(output, act_1, ..., act_n)``.

    Args:
        model: the network; traced in its current mode.
        layers: module names whose (last) call results are returned.

    Raises:
        TracingError: symbolic tracing failed or a layer is not a traced call.
    """
    try:
        graph = _LayersAsLeaves(layers).trace(model)
    except Exception as error:  # fx raises many types for untraceable Python
        raise TracingError(f"torch.fx cannot trace the model: {error}") from error
    graph_module = fx.GraphModule(model, graph)
    calls = {node.target: node for node in graph.nodes if node.op == "call_module"}
    missing = [name for name in layers if name not in calls]
    if missing:
        raise TracingError(f"layers {missing} are not separate calls in the traced graph")
    output = next(node for node in graph.nodes if node.op == "output")
    original = output.args[0]
    output.args = ((original, *[calls[name] for name in layers]),)
    graph.lint()
    graph_module.recompile()
    return graph_module


class TracedSaliencyNetwork(nn.Module):
    """``forward(images) -> (output, [map_1, ..., map_n])`` with the statistic in-graph.

    Args:
        model: the network (parameters shared, not copied).
        layers: scale-end module names, finest first.
        statistic: a post-activation statistic.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], statistic: Statistic):
        super().__init__()
        if statistic.pre_activation:
            raise TracingError(f"{statistic.name} needs pre-activation tensors; use the hook path")
        self.graph_module = trace_with_layers(model, layers)
        self.statistic = statistic

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        output, *activations = self.graph_module(images)
        return output, [self.statistic.function(a) for a in activations]


def compile_saliency_network(model: nn.Module, layers: Sequence[str], statistic: Statistic) -> nn.Module:
    """:class:`TracedSaliencyNetwork` wrapped in ``torch.compile`` (compiled lazily on first call)."""
    return torch.compile(TracedSaliencyNetwork(model, layers, statistic))
