"""Find the modules that end each spatial scale of a CNN.

A classification CNN works in groups of layers at one resolution, each group
ending just before a downsampling (the paper's "scales"). The discovery runs
one probe forward pass (batch 1, fixed random input, no autograd, buffers
restored afterwards, the user's own hooks set aside) and records, for every module call, its input and output
tensors. Then, for each resolution R:

1. the first module to start that downsamples from R (output height and width
   both smaller than its input's) marks the end of scale R, unless computation
   goes on at R after it (the global pooling of a squeeze-and-excitation block);
2. the tensor it receives was produced by the *scale end*: of the modules that
   returned that tensor, the outermost one whose own input is at most one
   downsampling step (a factor of 2) away, so ResNet-50 yields ``layer1`` rather
   than ``layer1.2.relu`` but DenseNet yields ``features.norm5`` rather than
   ``features``;
3. if that tensor has negative values, the first non-negative (post-activation)
   tensor at resolution R produced before the downsampling finishes is
   preferred (DenseNet's ``features.transition1.relu``);
4. a final lowest-resolution tensor that no module downsamples (DenseNet's
   ``norm5``, consumed by a functional pooling) is a scale too, unless only
   pooling produced it (VGG's last max-pool adds no computation at 7 x 7).
   A 1 x 1 resolution is never a scale: it has no spatial extent.

For ResNet-50 at 224 x 224 this gives ``relu`` (112), ``layer1`` (56), ``layer2``
(28), ``layer3`` (14), ``layer4`` (7).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

POOLING_TYPES = (
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
    nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout2d,
)


@dataclass(frozen=True)
class ScaleInfo:
    """One scale end found by :func:`describe_scales`.

    Attributes:
        name: module name as in ``model.named_modules()``.
        channels: channels of its output.
        height, width: output size in pixels for the probe input.
        stride: input pixels per output pixel along the height (2, 4, 8, ...).
        non_negative: whether the probe output had no negative values
            (statistics rectify it otherwise).
    """

    name: str
    channels: int
    height: int
    width: int
    stride: int
    non_negative: bool


@dataclass
class _Call:
    name: str
    module: nn.Module
    start: int
    end: int = -1
    input: Tensor | None = None
    output: Tensor | None = None
    non_negative: bool = False


def _spatial(t: Tensor | None) -> tuple[int, int] | None:
    return (t.shape[-2], t.shape[-1]) if isinstance(t, Tensor) and t.ndim == 4 else None


def _downsamples(call: _Call) -> bool:
    r_in, r_out = _spatial(call.input), _spatial(call.output)
    return r_in is not None and r_out is not None and r_out[0] < r_in[0] and r_out[1] < r_in[1]


def _probe(model: nn.Module, input_shape: tuple[int, ...]) -> list[_Call]:
    """Run one forward pass recording every module call, leaving the model as it was."""
    shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    probe = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    calls: list[_Call] = []
    stack: list[_Call] = []
    counter = [0]
    handles = []

    def pre_hook(name):
        def hook(module, args):
            call = _Call(name, module, counter[0])
            counter[0] += 1
            first = args[0] if args else None
            call.input = first if isinstance(first, Tensor) else None
            stack.append(call)
        return hook

    def post_hook(module, args, output):
        call = stack.pop()
        call.end = counter[0]
        counter[0] += 1
        if isinstance(output, Tensor):
            call.output = output
            call.non_negative = bool(output.detach().min() >= 0) if output.numel() else True
        calls.append(call)

    saved_buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    # The user's own hooks are set aside so the probe does not run them, and put back after.
    user_hooks = {m: (m._forward_pre_hooks, m._forward_hooks) for m in model.modules()}
    try:
        for name, module in model.named_modules():
            module._forward_pre_hooks, module._forward_hooks = OrderedDict(), OrderedDict()
            if name:
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                handles.append(module.register_forward_hook(post_hook))
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
        for module, (pre_hooks, hooks) in user_hooks.items():
            module._forward_pre_hooks, module._forward_hooks = pre_hooks, hooks
        with torch.no_grad():
            for key, buffer in model.named_buffers():
                buffer.copy_(saved_buffers[key])
    return sorted(calls, key=lambda c: c.start)


def _scale_end(calls: list[_Call], tensor: Tensor, before: int) -> _Call | None:
    """The outermost call that returned ``tensor`` before ``before`` and whose
    input is at most one downsampling step away (else the innermost one)."""
    producers = [c for c in calls if c.output is tensor and c.end < before]
    if not producers:
        return None
    producers.sort(key=lambda c: c.end, reverse=True)
    out = _spatial(tensor)
    for call in producers:
        r_in = _spatial(call.input)
        if r_in is not None and r_in[0] <= 2 * out[0] and r_in[1] <= 2 * out[1]:
            return call
    return producers[-1]


def _prefer_non_negative(calls: list[_Call], end: _Call, until: int) -> _Call:
    if end.non_negative:
        return end
    resolution = _spatial(end.output)
    for call in calls:
        if (
            call.start > end.end
            and call.end < until
            and call.non_negative
            and _spatial(call.output) == resolution
            and call.output.shape[1] > 1
        ):
            return _scale_end(calls, call.output, until) or call
    return end


def _continues_at(calls: list[_Call], resolution: tuple[int, int], after: int) -> bool:
    """Whether computation goes on at ``resolution`` after call index ``after``
    (true for the global pooling inside a squeeze-and-excitation block)."""
    return any(c.start > after and _spatial(c.output) == resolution for c in calls)


def describe_scales(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> list[ScaleInfo]:
    """The scale ends of ``model`` for inputs of ``input_shape``, from finest to coarsest.

    Args:
        model: any ``nn.Module`` taking one ``[B, C, H, W]`` tensor. Its
            parameters, buffers and train/eval mode are left unchanged.
        input_shape: ``(B, C, H, W)`` or ``(C, H, W)`` of the probe input.

    Returns:
        One :class:`ScaleInfo` per scale, finest first.

    Raises:
        ValueError: no scale found (the model never produces a 4-D activation).
    """
    calls = _probe(model, input_shape)
    height = input_shape[-2]
    ends: dict[tuple[int, int], _Call] = {}
    for call in calls:
        if not _downsamples(call):
            continue
        resolution = _spatial(call.input)
        if resolution in ends or _continues_at(calls, resolution, after=call.end):
            continue
        end = _scale_end(calls, call.input, before=call.start)
        if end is not None:
            ends[resolution] = _prefer_non_negative(calls, end, until=call.end)
    four_d = [c for c in calls if _spatial(c.output) is not None]
    if four_d:
        last = max(four_d, key=lambda c: c.end)
        resolution = _spatial(last.output)
        if resolution not in ends and resolution != (1, 1) and all(resolution[0] < r[0] for r in ends):
            makers = [c for c in calls if c.output is last.output]
            if not all(isinstance(c.module, (*POOLING_TYPES, nn.Sequential)) for c in makers):
                end = _scale_end(calls, last.output, before=last.end + 1)
                ends[resolution] = _prefer_non_negative(calls, end, until=last.end + 1)
    if not ends:
        raise ValueError("no spatial scale found: the model produced no 4-D activation for the probe input")
    scales = []
    for resolution in sorted(ends, key=lambda r: -r[0] * r[1]):
        call = ends[resolution]
        scales.append(
            ScaleInfo(
                name=call.name,
                channels=int(call.output.shape[1]),
                height=resolution[0],
                width=resolution[1],
                stride=max(1, round(height / resolution[0])),
                non_negative=call.non_negative,
            )
        )
    return scales


def find_scale_layers(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 224, 224)) -> list[str]:
    """Names of the modules that end each spatial scale, finest first.

    See :func:`describe_scales` for the rule; for ResNet-50 the answer is
    ``["relu", "layer1", "layer2", "layer3", "layer4"]``.
    """
    return [scale.name for scale in describe_scales(model, input_shape)]
