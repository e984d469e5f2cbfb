"""How a scene is executed, as opposed to what it computes (:class:`~geosal.pipeline.plan.ScenePlan`).

Nothing here changes the meaning of the output: a run may be resumed with other
settings (a GPU instead of the CPU, another batch size) and its fingerprint is
the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geosal.config import RunConfig


@dataclass(frozen=True)
class RunSettings:
    """Execution settings shipped with every task.

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when available), resolved on each worker.
        compile: ``torch.compile`` the network with the statistics inside.
        batch_size: tiles per forward pass.
        gdal_cache_mb: upper bound of GDAL's block cache per process, in MiB.
        skip_bad_blocks: write source blocks that cannot be read as nodata instead of failing.
    """

    device: str = "auto"
    compile: bool = False
    batch_size: int = 1
    gdal_cache_mb: int = 256
    skip_bad_blocks: bool = False

    @classmethod
    def from_config(cls, config: RunConfig) -> RunSettings:
        """The settings of a run configuration (``compute``, the batch size and ``input.skip_bad_blocks``)."""
        compute = config.compute
        return cls(device=compute.device, compile=compute.compile, batch_size=batch_size_for(config),
                   gdal_cache_mb=compute.gdal_cache_mb, skip_bad_blocks=config.input.skip_bad_blocks)


def batch_size_for(config: RunConfig) -> int:
    """Tiles per forward pass: ``tiling.batch_size``, or 1 on a CPU and 16 on a GPU (a CUDA device asked for,
    or ``auto`` on a machine with one when the work runs here)."""
    if config.tiling.batch_size:
        return config.tiling.batch_size
    compute = config.compute
    local = compute.scheduler in (None, "in-process")
    gpu = compute.uses_gpu or (compute.device == "auto" and local and torch.cuda.is_available())
    return 16 if gpu else 1
