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

A module that spans several downsampling steps (a ``Sequential`` holding all
of timm's ConvNeXt stages, 56 -> 7) does not end a scale: the steps inside it
do. An encoder-decoder network (a U-Net) is explained either by its encoder
(``decoder=False``: only the calls before the first upsampling count, so the
decoder's return to each resolution is not mistaken for more computation at
it) or by its decoder (``decoder=True``): then the scale end at resolution R is
the module that produced what the first upsampling from R receives (the
encoder's deepest stage, then each decoder stage), and the finest scale is the
input of the final head.

A network whose features are not ``[B, C, H, W]`` maps (a ViT's ``[B, tokens,
C]`` sequences, or the channels-last ``[B, H, W, C]`` stages of a Swin
transformer) is refused with one line: SMOE Scale reduces over the channels
of a spatial map.
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


class NonSpatialNetworkError(ValueError):
    """The network's features are not ``[B, C, H, W]`` maps (tokens, or channels-last stages)."""


def _channels_last(t: Tensor) -> bool:
    """A 4-D tensor shaped like ``[B, H, W, C]`` for the square probe (height equals width, not channels)."""
    return t.shape[1] == t.shape[2] != t.shape[3]


def _spatial(t: Tensor | None) -> tuple[int, int] | None:
    if not isinstance(t, Tensor) or t.ndim != 4 or _channels_last(t):
        return None
    return (t.shape[-2], t.shape[-1])


def _downsamples(call: _Call) -> bool:
    r_in, r_out = _spatial(call.input), _spatial(call.output)
    return r_in is not None and r_out is not None and r_out[0] < r_in[0] and r_out[1] < r_in[1]


def _upsamples(call: _Call) -> bool:
    r_in, r_out = _spatial(call.input), _spatial(call.output)
    return r_in is not None and r_out is not None and r_out[0] > r_in[0] and r_out[1] > r_in[1]


def _spans_several_steps(calls: list[_Call], call: _Call) -> bool:
    """Whether a call nested inside ``call`` produces a resolution strictly between
    ``call``'s input and output (a container of several stages, not one step)."""
    r_in, r_out = _spatial(call.input), _spatial(call.output)
    return any(
        c.start > call.start and c.end < call.end and (r := _spatial(c.output)) is not None
        and min(r_in[0], r_out[0]) < r[0] < max(r_in[0], r_out[0])
        for c in calls
    )


_LAYOUTS = {3: "[B, tokens, C] token sequences (as in ViT and Swin transformers)",
            4: "channels-last [B, H, W, C] maps (as in Swin transformers)"}


def _check_spatial(calls: list[_Call]) -> None:
    """Refuse a network that computes on non-spatial features after its last spatial map."""
    spatial = [c for c in calls if _spatial(c.output) is not None]
    last = max((c.end for c in spatial), default=-1)
    for call in calls:
        if call.start <= last or call.input is None or next(call.module.parameters(recurse=False), None) is None:
            continue
        shape = tuple(call.input.shape)
        if call.input.ndim == 3 and shape[1] > 1 or call.input.ndim == 4 and _channels_last(call.input):
            layout = _LAYOUTS[call.input.ndim]
            where = f"after {max(spatial, key=lambda c: c.end).name}" if spatial else "from the start"
            raise NonSpatialNetworkError(
                f"the network's features are not spatial maps: {where} it computes on {layout}, e.g. {call.name} "
                f"takes {list(shape)}; SMOE Scale needs [B, C, H, W] feature maps (use a CNN or a backbone with spatial stages)"
            )


def _check_ends_spatial(ends) -> None:
    """Refuse scale ends that only reshape non-spatial features into a map (a Swin's final permute)."""
    for end in ends:
        source = end.input
        if isinstance(source, Tensor) and (source.ndim == 3 and source.shape[1] > 1 or source.ndim == 4 and _channels_last(source)):
            raise NonSpatialNetworkError(
                f"the network's features are not spatial maps: {end.name} only turns {list(source.shape)} "
                f"{_LAYOUTS[source.ndim]} into a map; SMOE Scale needs [B, C, H, W] feature maps computed as such"
            )


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


def _producers(calls: list[_Call], tensor: Tensor, before: int) -> list[_Call]:
    """The calls that returned ``tensor`` before call index ``before``, latest first; pass-through
    modules (``nn.Identity``, such as a U-Net's empty ``center``) only when nothing else did."""
    producers = sorted((c for c in calls if c.output is tensor and c.end < before), key=lambda c: c.end, reverse=True)
    computing = [c for c in producers if not isinstance(c.module, nn.Identity)]
    return computing or producers


def _scale_end(calls: list[_Call], tensor: Tensor, before: int) -> _Call | None:
    """The outermost call that returned ``tensor`` before ``before`` and whose
    input is at most one downsampling step away (else the innermost one)."""
    producers = _producers(calls, tensor, before)
    if not producers:
        return None
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


def describe_scales(
    model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 224, 224), decoder: bool = False,
) -> list[ScaleInfo]:
    """The scale ends of ``model`` for inputs of ``input_shape``, from finest to coarsest.

    Args:
        model: any ``nn.Module`` taking one ``[B, C, H, W]`` tensor. Its
            parameters, buffers and train/eval mode are left unchanged.
        input_shape: ``(B, C, H, W)`` or ``(C, H, W)`` of the probe input.
        decoder: for an encoder-decoder network, find the decoder's stages
            instead of the encoder's (see the module docstring).

    Returns:
        One :class:`ScaleInfo` per scale, finest first.

    Raises:
        NonSpatialNetworkError: the features are tokens or channels-last (one line).
        ValueError: no scale found (the model never produces a 4-D activation).
    """
    calls = _probe(model, input_shape)
    height = input_shape[-2]
    first_up = next((c.start for c in calls if _upsamples(c) and not _spans_several_steps(calls, c)), None)
    if decoder:
        if first_up is None:
            raise ValueError("decoder scales asked for, but the network never upsamples (it has no decoder)")
        ends = _decoder_ends(calls)
    else:
        _check_spatial(calls)
        if first_up is not None:
            calls = [c for c in calls if c.end < first_up]
        ends = _encoder_ends(calls)
        _check_ends_spatial(ends.values())
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


def _encoder_ends(calls: list[_Call]) -> dict[tuple[int, int], _Call]:
    """Rules 1-4 of the module docstring on ``calls``."""
    ends: dict[tuple[int, int], _Call] = {}
    for call in calls:
        if not _downsamples(call) or _spans_several_steps(calls, call):
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
    return ends


def _decoder_end(calls: list[_Call], tensor: Tensor, before: int) -> _Call | None:
    """The outermost call that returned ``tensor`` before ``before`` and whose own 4-D
    input is within one resampling step (a factor of 2 either way) of it, else the innermost."""
    producers = _producers(calls, tensor, before)
    out = _spatial(tensor)
    for call in producers:
        r_in = _spatial(call.input)
        if r_in is not None and out[0] <= 2 * r_in[0] and r_in[0] <= 2 * out[0]:
            return call
    return producers[-1] if producers else None


def _decoder_ends(calls: list[_Call]) -> dict[tuple[int, int], _Call]:
    """For each resolution the decoder upsamples from, the producer of what the first
    upsampling receives; then the input of the final head at the finest resolution."""
    ends: dict[tuple[int, int], _Call] = {}
    for call in calls:
        if not _upsamples(call) or _spans_several_steps(calls, call):
            continue
        resolution = _spatial(call.input)
        if resolution not in ends and (end := _decoder_end(calls, call.input, before=call.start)) is not None:
            ends[resolution] = end
    final = max((c for c in calls if _spatial(c.output) is not None), key=lambda c: c.end, default=None)
    if final is not None:
        head = min((c for c in calls if c.output is final.output), key=lambda c: c.start)
        resolution = _spatial(head.input)
        if resolution is not None and all(resolution[0] > r[0] for r in ends):
            end = _decoder_end(calls, head.input, before=head.start)
            if end is not None:
                ends[resolution] = end
    return ends


def find_scale_layers(
    model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 224, 224), decoder: bool = False,
) -> list[str]:
    """Names of the modules that end each spatial scale, finest first.

    See :func:`describe_scales` for the rule; for ResNet-50 the answer is
    ``["relu", "layer1", "layer2", "layer3", "layer4"]``.
    """
    return [scale.name for scale in describe_scales(model, input_shape, decoder)]
