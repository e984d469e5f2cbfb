"""The native SMOE Scale kernel: a small C++ extension built on first use.

Compiled once per machine with the local C++ compiler and cached by
``torch.utils.cpp_extension`` (under ``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions``). Every Dask worker process loads the cached
build. When no compiler is available the build fails once, quietly, and
:func:`native_kernel` returns ``None`` (callers fall back to the compiled
``torch`` kernel).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("smoe_kernel.cpp")
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp"]

_lock = threading.Lock()
_kernel: Callable[[Tensor], Tensor] | None = None
_failed = False


def native_kernel() -> Callable[[Tensor], Tensor] | None:
    """The compiled ``smoe_scale(x)`` for float32 CPU ``[B, C, H, W]`` (NCHW or channels-last), or None."""
    global _kernel, _failed
    if _kernel is not None or _failed:
        return _kernel
    with _lock:
        if _kernel is None and not _failed:
            try:
                from torch.utils.cpp_extension import load

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = load("geosal_smoe_kernel", [str(SOURCE)], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"])
                _kernel = module.smoe_scale
            except Exception as error:  # no compiler, no headers, unsupported platform
                _failed = True
                warnings.warn(f"native SMOE kernel unavailable ({type(error).__name__}); using torch.compile", stacklevel=2)
    return _kernel


@torch.library.custom_op("geosal::smoe_scale", mutates_args=())
def smoe_scale_op(x: Tensor) -> Tensor:
    """The native kernel as a torch operator, so ``torch.compile`` graphs call it
    as one opaque op (inductor would otherwise generate a slower reduction).
    Only used when :func:`native_kernel` is available."""
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        x = x.contiguous()
    return native_kernel()(x)


@smoe_scale_op.register_fake
def _(x: Tensor) -> Tensor:
    return x.new_empty((x.shape[0], x.shape[2], x.shape[3]))
