"""Lazy package attributes (PEP 562), so that importing a package costs only what is used.

``geosal.cluster`` would otherwise import Dask (about a second) for an in-process
run, and ``geosal.config`` would import torch through ``geosal.saliency`` just to
check a statistic's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``name -> submodule``.

    Example (in a package's ``__init__.py``)::

        __getattr__, __dir__ = lazy_exports(__name__, {"SaliencyMaps": "maps"})

    The submodule ``package.<submodule>`` is imported on the first access of a
    name and the attribute is cached on the package.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
