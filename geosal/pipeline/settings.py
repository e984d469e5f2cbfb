"""How a scene is executed, as opposed to what it computes (:class:`~geosal.pipeline.plan.ScenePlan`).

Nothing here changes the meaning of the output: a run may be resumed with other
settings (a GPU instead of the CPU, another batch size) and its fingerprint is
the same.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    batch_size: int = 4
    gdal_cache_mb: int = 256
    skip_bad_blocks: bool = False

    @classmethod
    def from_config(cls, config: RunConfig) -> RunSettings:
        """The settings of a run configuration (``compute``, ``tiling.batch_size``, ``input.skip_bad_blocks``)."""
        compute = config.compute
        return cls(device=compute.device, compile=compute.compile, batch_size=config.tiling.batch_size,
                   gdal_cache_mb=compute.gdal_cache_mb, skip_bad_blocks=config.input.skip_bad_blocks)
