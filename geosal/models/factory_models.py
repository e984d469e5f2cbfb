"""Any network, from a factory: ``package.module:function`` returning an ``nn.Module``.

The factory is called with the spec's options as keyword arguments; its
weights come from a checkpoint read with ``torch.load(weights_only=True)``, so
a model geosal has never heard of runs without unpickling code. The factory's
package must be importable wherever the model is built (the client and every
Dask worker).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from geosal.models.errors import ModelLoadError
from geosal.models.spec import ModelSpec


def import_factory(reference: str) -> Callable[..., nn.Module]:
    """The callable named ``package.module:function`` (``function`` may be dotted: ``Class.method``).

    Raises:
        ModelLoadError: malformed reference, module that does not import, missing or non-callable name.
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise ModelLoadError(f"model factory {reference!r} must look like package.module:function")
    try:
        target = importlib.import_module(module_name)
    except Exception as error:  # any exception while importing user code is the user's to fix
        raise ModelLoadError(f"model factory {reference}: cannot import {module_name} ({type(error).__name__}: {error})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelLoadError(f"model factory {reference}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ModelLoadError(f"model factory {reference}: {attribute} is not callable")
    return target


def build(spec: ModelSpec) -> nn.Module:
    """Call the spec's factory with its options; the result must be an ``nn.Module``.

    Raises:
        ModelLoadError: the factory cannot be imported, fails, or returns something else.
    """
    factory = import_factory(spec.architecture)
    try:
        network = factory(**spec.builder_options)
    except Exception as error:  # the factory is user code: report its failure in one line
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise ModelLoadError(f"model factory {spec.architecture} failed: {type(error).__name__}: {first}") from None
    if not isinstance(network, nn.Module):
        raise ModelLoadError(
            f"model factory {spec.architecture} returned {type(network).__name__}, not a torch.nn.Module"
        )
    return network
