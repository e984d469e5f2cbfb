"""Per-location statistics over the channel axis of an activation tensor.

Every statistic maps an activation ``[B, C, H, W]`` to a saliency map
``[B, H, W]`` of ``float32``, whatever the input dtype: the reduction is
always carried out in float32, so float16 and bfloat16 activations cannot
overflow to inf or produce NaN.

The default is SMOE Scale (Eq. 2 of Mundhenk et al., "Efficient Saliency Maps
for Explainable AI"); the others are the alternatives the paper compares in
its Tables 1 and 4, plus the full maximum-likelihood Gamma scale (Appendix
A.1) that SMOE Scale simplifies. Statistics that model non-negative data
(all but the truncated-normal ones) rectify their input first (``max(x, 0)``,
a no-op after a ReLU), so a scale that ends in a batch-norm or a residual sum
is handled as the paper's post-ReLU tensor. The truncated-normal statistics
take the tensor before the activation function, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from geosal.saliency.catalog import STATISTIC_NAMES
from geosal.saliency.native import native_kernel, smoe_scale_op

EPSILON = 1e-6
"""Added to every activation before a logarithm (Eq. 1 of the paper)."""

_LOG2_E = 1.0 / math.log(2.0)


def _check_activation(x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected an activation of shape [B, C, H, W], got {tuple(x.shape)}")


def _as_float32(x: Tensor) -> Tensor:
    _check_activation(x)
    return x.float()


def smoe_scale_eager(x: Tensor) -> Tensor:
    """SMOE Scale, Eq. 2, in plain eager torch (reference form).

    ``mean_k(mu * log2(mu / x_k)) = mu * (log2(mu) - mean_k(log2(x_k)))`` with
    ``x_k = max(x, 0) + 1e-6`` and ``mu = mean_k(x_k)``.

    Args:
        x: activation ``[B, C, H, W]``, any float dtype; values should be >= 0.

    Returns:
        ``[B, H, W]`` float32, >= 0 (0 where the column is constant).
    """
    x = _as_float32(x).clamp_min(0.0) + EPSILON
    mu = x.mean(dim=1)
    return (mu * (torch.log2(mu) - torch.log2(x).mean(dim=1))).clamp_min_(0.0)


_LOG2_1P_COEFFICIENTS = (
    4.8764396409772814e-08, 1.442686782158098, -0.7211146690513038, 0.4783238506425779, -0.3459969059282805,
    0.2392331147000649, -0.1345355615161275, 0.050278108076799125, -0.008874803562772834,
)
"""Degree-8 least-squares (Chebyshev nodes) fit of ``log2(1 + t)`` on [0, 1): max error 4.9e-8."""


def fast_log2(x: Tensor) -> Tensor:
    """``log2`` of positive, finite, normal float32 values from their bits.

    ``x = 2^e * (1 + t)`` with ``t`` in [0, 1): the exponent comes from the bit
    pattern and ``log2(1 + t)`` from a degree-8 polynomial (error below 5e-8,
    under float32 resolution), so the compiler emits a few integer ops and
    eight fused multiply-adds instead of a libm call. Within 1.1e-6 absolute of
    the exact value over [1e-6, 1e6], like ``torch.log2`` in float32.
    """
    bits = x.view(torch.int32)
    exponent = ((bits >> 23) - 127).float()
    t = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32) - 1.0
    result = t * _LOG2_1P_COEFFICIENTS[-1] + _LOG2_1P_COEFFICIENTS[-2]
    for coefficient in reversed(_LOG2_1P_COEFFICIENTS[:-2]):
        result = result * t + coefficient
    return exponent + result


def _smoe_scale_kernel(x: Tensor) -> Tensor:
    # Written so the compiler fuses everything into one pass over x: two
    # channel reductions of per-element expressions, then a few ops on [B, H, W]
    # (the compiler keeps the two sums in [B, H, W] buffers, hence the bands of rows).
    # The sums accumulate in float64: Eq. 2 subtracts two close numbers, and a
    # float32 running sum over thousands of channels loses about 1e-5 relative.
    x = x.float().clamp_min(0.0) + EPSILON
    mu = x.double().mean(dim=1)
    mean_log2 = fast_log2(x).double().mean(dim=1)
    return (mu * (torch.log2(mu) - mean_log2)).clamp_min(0.0).float()


_compiled_kernel: Callable[[Tensor], Tensor] | None = None
_compile_failed: set[str] = set()
"""Device types on which ``torch.compile`` failed (no compiler, no Triton): they use the eager form."""

KERNEL_BUFFER_LOCATIONS = 1024
"""Spatial locations per image handled by one compiled-kernel call on the CPU. The compiled kernel
keeps its two float64 sums in ``[B, rows, W]`` buffers, so processing the map in bands of rows bounds that
scratch space to about 16 KB per image whatever the layer size (a whole 112 x 112 map at once would need
200 KB). On a GPU one call per layer is right: a kernel launch costs more than the scratch space."""


def smoe_dispatch(x: Tensor, native_available: bool) -> str:
    """Which implementation :func:`smoe_scale_fused` uses for ``x``: ``native`` (the C++ kernel: float32 CPU
    tensors, NCHW or channels-last), ``compiled-banded`` (other CPU tensors: the compiled kernel in bands of
    rows), ``compiled`` (GPU and other devices: one compiled call per layer) or ``eager`` (compilation
    failed on this device type before)."""
    cpu = x.device.type == "cpu"
    if cpu and native_available and x.dtype == torch.float32 and (
        x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
    ):
        return "native"
    if x.device.type in _compile_failed:
        return "eager"
    return "compiled-banded" if cpu else "compiled"


def smoe_scale_fused(x: Tensor) -> Tensor:
    """SMOE Scale in one pass over ``x`` with no activation-sized temporaries.

    On the CPU, float32 activations in NCHW or channels-last memory go through
    the native C++ kernel (:mod:`geosal.saliency.native`): it streams the
    channel planes once and keeps its sums in L1 cache, so it allocates
    nothing but the ``[B, H, W]`` result. Everything else goes through a
    ``torch.compile``-d kernel compiled once per process for all shapes: on
    the CPU in bands of rows written into one preallocated result (see
    :data:`KERNEL_BUFFER_LOCATIONS`), on a GPU in one call per layer
    (:func:`smoe_dispatch`). If compilation fails on a device type (no
    compiler, no Triton), that device type uses :func:`smoe_scale_eager`
    from then on, with one warning; running out of memory is raised, never
    turned into a fallback. All paths accumulate in float64 and agree within
    1e-5 relative.

    Args / Returns: as :func:`smoe_scale_eager`.
    """
    global _compiled_kernel
    _check_activation(x)
    path = smoe_dispatch(x, native_available=x.device.type == "cpu" and native_kernel() is not None)
    if path == "native":
        return native_kernel()(x)
    if path == "eager":
        return smoe_scale_eager(x)
    if _compiled_kernel is None:
        _compiled_kernel = torch.compile(_smoe_scale_kernel, dynamic=True, fullgraph=True)
    try:
        if path == "compiled":
            return _compiled_kernel(x)
        batch, _, height, width = x.shape
        rows = max(1, min(height, KERNEL_BUFFER_LOCATIONS // max(width, 1)))
        if rows >= height:
            return _compiled_kernel(x)
        out = torch.empty(batch, height, width, dtype=torch.float32, device=x.device)
        for top in range(0, height, rows):
            out[:, top : top + rows] = _compiled_kernel(x[:, :, top : top + rows])
        return out
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - compiler or backend missing on this device type: degrade, do not crash
        _compile_failed.add(x.device.type)
        import warnings

        warnings.warn(f"fused SMOE Scale unavailable on {x.device.type} ({type(error).__name__}); using the eager form",
                      stacklevel=2)
        return smoe_scale_eager(x)


def smoe_scale(x: Tensor, fused: bool = True) -> Tensor:
    """SMOE Scale saliency of each spatial location (Eq. 2), the default statistic.

    Args:
        x: activation ``[B, C, H, W]`` (any float dtype; negative values are
            treated as 0, as after a ReLU).
        fused: use the compiled single-pass kernel (see :func:`smoe_scale_fused`);
            ``False`` uses the eager form. Both agree within 1e-5 relative.

    Returns:
        ``[B, H, W]`` float32 map, >= 0; larger means more informative.
    """
    if torch.compiler.is_compiling():  # inside a compiled graph: the native op, else let inductor generate one
        if x.device.type == "cpu" and x.dtype == torch.float32 and native_kernel() is not None:
            return smoe_scale_op(x)
        return _smoe_scale_kernel(x)
    return smoe_scale_fused(x) if fused else smoe_scale_eager(x)


def smoe_scale_magnitude(x: Tensor, fused: bool = True) -> Tensor:
    """SMOE Scale of the response magnitudes ``|x|``: the statistic for scale ends that can be negative.

    Scale ends that are not followed by a ReLU (a ConvNeXt stage's residual
    stream, an EfficientNet or MobileNet linear bottleneck, GELU / SiLU
    outputs, a norm layer) carry information in both signs: the next layer
    weighs a strongly negative response as much as a strongly positive one.
    Rectifying (what :func:`smoe_scale` does, right for post-ReLU tensors) would
    count every negative response as absent, so the map would depend on the
    arbitrary sign convention of each channel. Here SMOE Scale's Gamma model
    describes the distribution of ``|x|`` instead; on a non-negative tensor
    ``|x| = x``, so this equals :func:`smoe_scale` there exactly.

    Args:
        x: activation ``[B, C, H, W]``, any float dtype and sign.
        fused: as :func:`smoe_scale`.

    Returns:
        ``[B, H, W]`` float32, >= 0.
    """
    _check_activation(x)
    return smoe_scale(x.abs(), fused)


def standard_deviation(x: Tensor) -> Tensor:
    """Population standard deviation over channels of ``max(x, 0)``: ``[B, C, H, W] -> [B, H, W]``."""
    return _as_float32(x).clamp_min(0.0).std(dim=1, correction=0)


def mean(x: Tensor) -> Tensor:
    """Mean over channels of ``max(x, 0)`` (the paper's "Normal Mean"): ``[B, C, H, W] -> [B, H, W]``."""
    return _as_float32(x).clamp_min(0.0).mean(dim=1)


def maximum(x: Tensor) -> Tensor:
    """Maximum over channels: ``[B, C, H, W] -> [B, H, W]``."""
    return _as_float32(x).amax(dim=1).clamp_min(0.0)


def shannon_entropy(x: Tensor) -> Tensor:
    """Shannon entropy in bits of each column read as a distribution,
    ``p_k = x_k / sum_k x_k`` with ``x_k = max(x, 0) + 1e-6``.

    Returns ``[B, H, W]`` float32 in ``[0, log2(C)]``.
    """
    x = _as_float32(x).clamp_min(0.0) + EPSILON
    p = x / x.sum(dim=1, keepdim=True)
    return -(p * torch.log2(p)).sum(dim=1)


def _log_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    log_x = torch.log(_as_float32(x).clamp_min(0.0) + EPSILON)
    return log_x.mean(dim=1), log_x.var(dim=1, correction=0)


def log_normal_mean(x: Tensor) -> Tensor:
    """Mean of a log-normal fitted to each column (maximum likelihood):
    ``exp(m + s^2 / 2)`` with ``m, s^2`` the mean and variance of ``ln(x + 1e-6)``.

    Returns ``[B, H, W]`` float32, > 0.
    """
    m, s2 = _log_moments(x)
    return torch.exp(m + 0.5 * s2)


def log_normal_entropy(x: Tensor) -> Tensor:
    """Differential entropy in nats of a log-normal fitted to each column:
    ``m + ln(2 pi e s^2) / 2``. Constant columns (``s = 0``) give a finite
    floor of ``m + ln(2 pi e 1e-12) / 2``.

    Returns ``[B, H, W]`` float32 (may be negative).
    """
    m, s2 = _log_moments(x)
    return m + 0.5 * torch.log(2 * math.pi * math.e * s2.clamp_min(1e-12))


def _truncated_normal_parts(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Moments of the normal fitted to each pre-activation column and its
    truncation at 0: returns ``(sigma, alpha, log_z, lam, pdf_alpha)`` with
    ``alpha = -mu / sigma``, ``z = 1 - Phi(alpha)`` (in log space for stability)
    and ``lam = phi(alpha) / z`` (the inverse Mills ratio)."""
    x = _as_float32(x)
    mu = x.mean(dim=1)
    sigma = x.std(dim=1, correction=0).clamp_min(EPSILON)
    alpha = -mu / sigma
    log_z = torch.special.log_ndtr(-alpha)
    log_pdf = -0.5 * alpha * alpha - 0.5 * math.log(2 * math.pi)
    lam = torch.exp(log_pdf - log_z)
    return mu, sigma, alpha, log_z, lam


def truncated_normal_mean(x: Tensor) -> Tensor:
    """Mean of the normal fitted to each *pre-activation* column, truncated to
    ``[0, inf)`` (the expected value after a ReLU that drops the negatives):
    ``mu + sigma * lam``.

    Args:
        x: the tensor before the activation function, ``[B, C, H, W]``, any sign.

    Returns ``[B, H, W]`` float32, >= 0.
    """
    mu, sigma, _, _, lam = _truncated_normal_parts(x)
    return (mu + sigma * lam).clamp_min(0.0)


def truncated_normal_std(x: Tensor) -> Tensor:
    """Standard deviation of the truncated normal (see :func:`truncated_normal_mean`):
    ``sigma * sqrt(1 + alpha * lam - lam^2)``. Returns ``[B, H, W]`` float32, >= 0."""
    _, sigma, alpha, _, lam = _truncated_normal_parts(x)
    return sigma * torch.sqrt((1 + alpha * lam - lam * lam).clamp_min(0.0))


def truncated_normal_entropy(x: Tensor) -> Tensor:
    """Differential entropy in nats of the truncated normal (see
    :func:`truncated_normal_mean`): ``ln(sqrt(2 pi e) sigma z) + alpha lam / 2``.
    Returns ``[B, H, W]`` float32 (may be negative)."""
    _, sigma, alpha, log_z, lam = _truncated_normal_parts(x)
    return 0.5 * math.log(2 * math.pi * math.e) + torch.log(sigma) + log_z + 0.5 * alpha * lam


def gamma_shape_mle(s: Tensor, newton_steps: int = 6) -> Tensor:
    """Maximum-likelihood Gamma shape ``k`` from ``s = ln(mean x) - mean(ln x)``.

    Choi-Wette starting value (Eq. 12, within 1.5%) refined by Newton steps on
    ``ln k - digamma(k) = s`` (Eq. 13), in float64.

    Args:
        s: tensor of any shape, > 0.

    Returns:
        ``k`` of the same shape and dtype float64, > 0.
    """
    s = s.double().clamp_min(1e-12)
    k = (3 - s + torch.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(newton_steps):
        step = (torch.log(k) - torch.digamma(k) - s) / (1 / k - torch.polygamma(1, k))
        k = (k - step).clamp_min(1e-12)
    return k


def gamma_scale_mle(x: Tensor, newton_steps: int = 6) -> Tensor:
    """Full maximum-likelihood Gamma scale ``theta = mean(x) / k`` of each column
    (Eqs. 10-13), with ``x_k = max(x, 0) + 1e-6``. The expensive estimator that
    SMOE Scale simplifies; computed in float64 and returned as float32.

    Returns ``[B, H, W]`` float32, > 0.
    """
    x = _as_float32(x).clamp_min(0.0).double() + EPSILON
    mu = x.mean(dim=1)
    s = torch.log(mu) - torch.log(x).mean(dim=1)
    return (mu / gamma_shape_mle(s, newton_steps)).float()


@dataclass(frozen=True)
class Statistic:
    """A named statistic.

    Attributes:
        name: registry key.
        label: the name the paper's tables use.
        function: ``[B, C, H, W] -> [B, H, W]`` float32.
        pre_activation: ``True`` when it must see the tensor before the activation function.
    """

    name: str
    label: str
    function: Callable[[Tensor], Tensor]
    pre_activation: bool = False


_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "smoe_scale": smoe_scale,
    "smoe_scale_magnitude": smoe_scale_magnitude,
    "std": standard_deviation,
    "mean": mean,
    "max": maximum,
    "shannon_entropy": shannon_entropy,
    "log_normal_mean": log_normal_mean,
    "log_normal_entropy": log_normal_entropy,
    "truncated_normal_mean": truncated_normal_mean,
    "truncated_normal_std": truncated_normal_std,
    "truncated_normal_entropy": truncated_normal_entropy,
    "gamma_scale_mle": gamma_scale_mle,
}

STATISTICS: dict[str, Statistic] = {
    name: Statistic(name, entry.label, _FUNCTIONS[name], entry.pre_activation) for name, entry in STATISTIC_NAMES.items()
}
"""Every statistic by name (:data:`~geosal.saliency.catalog.STATISTIC_NAMES` with its function)."""


SIGNED_SCALE_STATISTIC = "smoe_scale_magnitude"
"""What :func:`statistic_for_scales` uses instead of ``smoe_scale`` when a scale end can be negative."""


def statistic_for_scales(requested: str, non_negative: list[bool]) -> tuple[str, str | None]:
    """The statistic to run for scale ends whose probe outputs were (or were not) non-negative.

    ``smoe_scale`` (the default) becomes :data:`SIGNED_SCALE_STATISTIC` when any
    scale end can be negative, with a note saying why; that statistic equals
    ``smoe_scale`` on the non-negative ends. Any other requested statistic is kept.

    Args:
        requested: the configured statistic name.
        non_negative: one flag per scale end (``ScaleInfo.non_negative``).

    Returns:
        ``(name, note)``; ``note`` is ``None`` when nothing changed.
    """
    if requested != "smoe_scale" or all(non_negative):
        return requested, None
    signed = sum(not flag for flag in non_negative)
    return SIGNED_SCALE_STATISTIC, (
        f"{signed} of {len(non_negative)} scale ends can be negative (no ReLU after them): SMOE Scale is taken of "
        "|activation| (smoe_scale_magnitude), since negative responses carry information there; "
        "on the non-negative ends it equals smoe_scale"
    )


def get_statistic(name: str | Statistic) -> Statistic:
    """Look up a statistic by name (see ``STATISTICS``); a :class:`Statistic` passes through.

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    if isinstance(name, Statistic):
        return name
    try:
        return STATISTICS[name]
    except KeyError:
        raise ValueError(f"unknown statistic {name!r}; choose one of: {', '.join(STATISTICS)}") from None
