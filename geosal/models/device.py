"""Which torch device a command runs on, checked before any work starts."""

from __future__ import annotations

import torch

from geosal.errors import GeosalError


class DeviceError(GeosalError, RuntimeError):
    """The requested device cannot be used (one line, with what to check)."""


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``cuda`` when a GPU is visible, else ``cpu``; a CUDA device that torch cannot use
    is a :class:`DeviceError` saying why (a CPU build of torch, or a driver too old for its CUDA)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if torch.version.cuda is None:
            raise DeviceError(f"device {device} requested, but torch {torch.__version__} is a CPU build: install a CUDA "
                              "build of torch, or run with --device cpu")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device} requested, but torch {torch.__version__} (built for CUDA {torch.version.cuda}) "
                              f"finds no usable GPU: check that nvidia-smi works and that the NVIDIA driver supports CUDA "
                              f"{torch.version.cuda}, or run with --device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device} requested, but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """True when ``/proc/cpuinfo`` text lists an instruction set with bfloat16 arithmetic (``avx512_bf16`` or
    ``amx_bf16``); without one, torch emulates bfloat16 on the CPU, several times slower than float32."""
    flags = {word for line in cpuinfo.splitlines() if line.startswith("flags") for word in line.partition(":")[2].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: str) -> bool:
    """True when ``device`` (a resolved device: ``cpu``, ``cuda``, ``cuda:N``) computes bfloat16 in hardware, so
    that bfloat16 autocast speeds work up: a CUDA GPU that supports it, or a Linux CPU with AVX512-BF16 or AMX.
    False elsewhere (an AVX2 CPU runs bfloat16 autocast about 8 times slower than float32)."""
    if device.startswith("cuda"):
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return cpu_flags_have_bf16(handle.read())
    except OSError:
        return False
