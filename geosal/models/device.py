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
