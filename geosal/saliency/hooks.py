"""Compute a statistic at chosen modules during an ordinary forward pass.

:class:`ScaleHooks` is a context manager: on entry it registers forward hooks
on the named modules, each of which reduces that module's output to a
``[B, H, W]`` map immediately (so no activation is kept alive); on exit, even
after an exception, it removes exactly the hooks it added. Hooks the user
registered are never touched, and the model's parameters, buffers and
train/eval mode are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from geosal.saliency.statistics import Statistic, get_statistic

ACTIVATION_TYPES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Softplus,
)


def resolve_modules(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    """The submodules of ``model`` called ``names``.

    Raises:
        ValueError: a name is not a submodule, listing a few that are.
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or not n]
    if missing:
        examples = ", ".join(list(n for n in modules if n)[:8])
        raise ValueError(f"no module named {', '.join(map(repr, missing))} in the model (modules include: {examples}, ...)")
    return [modules[n] for n in names]


class ScaleHooks:
    """Record one statistic map per named module during forward passes.

    Example::

        with ScaleHooks(model, ["relu", "layer1", "layer2", "layer3", "layer4"]) as hooks:
            logits = model(images)
        maps = hooks.maps  # list of [B, h_k, w_k] float32

    Args:
        model: the network (left in whatever mode it is in).
        layers: module names, finest scale first.
        statistic: a name from :data:`geosal.saliency.statistics.STATISTICS` or a
            :class:`~geosal.saliency.statistics.Statistic`.

    A module called several times in one forward pass (a shared activation)
    contributes its last call. For statistics that need the tensor before the
    activation function (truncated normal), the input of the last activation
    module run inside each named module is used (copied before an in-place
    activation overwrites it); a named module without one (a batch-norm such as
    DenseNet's ``norm5``) contributes its output, which is pre-activation.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], statistic: str | Statistic = "smoe_scale"):
        self.model = model
        self.layers = list(layers)
        self.statistic = get_statistic(statistic)
        self._modules = resolve_modules(model, self.layers)
        self._handles: list[RemovableHandle] = []
        self._pre_activation: list[Tensor | None] = [None] * len(self.layers)
        self.maps: list[Tensor | None] = [None] * len(self.layers)

    def __enter__(self) -> ScaleHooks:
        for index, module in enumerate(self._modules):
            if self.statistic.pre_activation:
                for inner in module.modules():
                    if isinstance(inner, ACTIVATION_TYPES):
                        self._handles.append(inner.register_forward_pre_hook(self._keep_pre_activation(index)))
            self._handles.append(module.register_forward_hook(self._reduce(index)))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pre_activation = [None] * len(self.layers)

    def reset(self) -> None:
        """Forget the maps of the previous forward pass."""
        self.maps = [None] * len(self.layers)
        self._pre_activation = [None] * len(self.layers)

    def _keep_pre_activation(self, index: int):
        def hook(module: nn.Module, args: tuple) -> None:
            if args and isinstance(args[0], Tensor):
                self._pre_activation[index] = args[0].detach().clone()
        return hook

    def _reduce(self, index: int):
        def hook(module: nn.Module, args: tuple, output) -> None:
            if not isinstance(output, Tensor) or output.ndim != 4:
                raise ValueError(
                    f"module {self.layers[index]!r} returned {type(output).__name__} "
                    f"{tuple(getattr(output, 'shape', ()))}; a scale end must return a [B, C, H, W] tensor"
                )
            source = output
            if self.statistic.pre_activation:
                kept = self._pre_activation[index]
                if kept is not None and kept.shape == output.shape:
                    source = kept
                self._pre_activation[index] = None
            with torch.no_grad():
                self.maps[index] = self.statistic.function(source.detach())
        return hook
