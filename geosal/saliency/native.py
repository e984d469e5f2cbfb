"""The native SMOE Scale kernel: a small C++ extension built on first use.

Compiled with the local C++ compiler for this CPU (``-march=native``) and cached
by ``torch.utils.cpp_extension`` under ``$TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``). The build is named after a hash of the kernel's
source, the compiler flags and this CPU's identity and instruction-set flags
(:func:`build_name`): a cache shared between machines (a Docker volume, a home
directory on NFS) keeps one build per kind of CPU and never hands one CPU code
compiled for another's instructions, and copies of the project in different
folders share a build instead of rebuilding each other's. Every Dask worker
process loads the cached build. When no compiler is available the build fails
once, quietly, and :func:`native_kernel` returns ``None`` (callers fall back to
the compiled ``torch`` kernel).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("smoe_kernel.cpp")
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp"]



def cpu_identity() -> str:
    """This CPU's model and instruction-set flags (from ``/proc/cpuinfo`` on Linux), or the platform's name."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def build_name() -> str:
    """The extension's module name: ``geosal_smoe_`` plus a hash of the source, the flags and :func:`cpu_identity`."""
    digest = hashlib.sha256(SOURCE.read_bytes() + repr(FLAGS).encode() + cpu_identity().encode()).hexdigest()
    return f"geosal_smoe_{digest[:16]}"


def _stable_source(name: str) -> Path:
    """A copy of the source at a path that depends only on ``name`` (the build rules name the source's
    path: a project copy in another folder would otherwise rebuild the extension)."""
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    path = root / "geosal_sources" / f"{name}.cpp"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_bytes(SOURCE.read_bytes())
        os.replace(staging, path)
    return path


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
                # its import warns on every CPU-only machine that no CUDA runtime is found: not news to a user
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
                from torch.utils.cpp_extension import load

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    name = build_name()
                    module = load(name, [str(_stable_source(name))], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"])
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
