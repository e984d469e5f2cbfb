"""Read and write checkpoints safely.

Every file is read with ``torch.load(weights_only=True)``: only tensors and
plain containers are accepted, never pickled code. Common wrappers are
unwrapped: ``{"state_dict": ...}`` (Lightning / TorchGeo), ``{"model": ...}``,
``{"model_state_dict": ...}``, ``{"network": ...}``, and the key prefixes
``module.`` (DataParallel / DDP), ``model.`` and ``_orig_mod.`` (torch.compile).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from geosal.models.errors import ModelLoadError
from geosal.models.extras import require

GEOSAL_FORMAT = "geosal-checkpoint-v1"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "network", "net")
PREFIXES = ("module.", "_orig_mod.", "model.", "network.")


def read_checkpoint(path: str | Path, content: bytes | None = None) -> dict:
    """Load a checkpoint as a plain dict, refusing anything that needs code.

    PyTorch files are read with ``torch.load(weights_only=True)``; ``.safetensors``
    files (timm's cache) with ``safetensors``, which holds tensors only.

    Args:
        path: the file; with ``content`` only its name is used (in messages, and
            its suffix to recognise safetensors).
        content: the file's bytes, when they came from elsewhere (a client that
            resolved the model and sent them to a worker).

    Raises:
        ModelLoadError: missing file, not a PyTorch file, corrupt, or pickled objects.
    """
    path = Path(path)
    if content is None and not path.is_file():
        raise ModelLoadError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors" or (content is not None and _looks_like_safetensors(content)):
        return _read_safetensors(path, content)
    source = io.BytesIO(content) if content is not None else path
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # no class to refuse: the bytes are not a pickle at all
            raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from error
        raise ModelLoadError(
            f"{path}: refused, the file holds pickled Python objects (a whole saved model?) that would run code "
            "on loading; save model.state_dict() instead"
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from error
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path}: expected a state dict, found {type(loaded).__name__}")
    return loaded


def _looks_like_safetensors(content: bytes) -> bool:
    """A safetensors file starts with its header's length (8 bytes, little-endian) and the JSON header."""
    if len(content) < 10:
        return False
    header = int.from_bytes(content[:8], "little")
    return 0 < header <= len(content) - 8 and content[8:9] == b"{"


def _read_safetensors(path: Path, content: bytes | None) -> dict:
    safetensors_torch = require("safetensors.torch")
    try:
        return dict(safetensors_torch.load(content if content is not None else path.read_bytes()))
    except Exception as error:  # safetensors raises its own SafetensorError for any malformed file
        raise ModelLoadError(f"{path}: not a readable safetensors file ({_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:120]}" if lines else type(error).__name__


def extract_state_dict(content: dict) -> dict[str, torch.Tensor]:
    """The parameter dict inside a checkpoint, unwrapped and with prefixes removed."""
    state = content
    for _ in range(3):
        inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError("the checkpoint holds no tensors")
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def load_weights(network: nn.Module, state: dict[str, torch.Tensor], source: str, optional: tuple[str, ...] = ()) -> None:
    """Copy ``state`` into ``network`` strictly (dtypes converted to the network's).

    Args:
        optional: key prefixes that may be missing from ``state`` or present in it
            without a place in the network (a classifier head that a backbone lacks).

    Raises:
        ModelLoadError: missing or unexpected keys, or shape mismatches, all listed.
    """
    expected = network.state_dict()

    def required(key: str) -> bool:
        return not key.startswith(optional) if optional else True

    state = {k: v for k, v in state.items() if k in expected or required(k)}
    missing = sorted(k for k in set(expected) - set(state) if required(k))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_short(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches (checkpoint vs model): {_short(wrong)}")
    if problems:
        raise ModelLoadError(f"{source} does not fit the network: " + "; ".join(problems))
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=not optional)


def _short(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def save_checkpoint(path: str | Path, network: nn.Module, spec: dict, half: bool = True, extra: dict | None = None) -> None:
    """Write a geosal checkpoint: ``{"format", "spec", "state_dict", **extra}``.

    Args:
        spec: plain dict (see :meth:`ModelSpec.to_dict`).
        half: store floating-point tensors as float16 (half the size; loading
            converts back to the network's dtype).
        extra: further plain values to store (metrics, for example).
    """
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
        for k, v in network.state_dict().items()
    }
    torch.save({"format": GEOSAL_FORMAT, "spec": spec, "state_dict": state, **(extra or {})}, path)
