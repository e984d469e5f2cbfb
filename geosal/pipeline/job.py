"""One scene's work as the tasks see it: the plan, the settings, the store and the scene's name."""

from __future__ import annotations

from dataclasses import dataclass

from geosal.pipeline.plan import ScenePlan
from geosal.pipeline.settings import RunSettings


@dataclass(frozen=True)
class SceneJob:
    """What every block and chunk task of a scene receives (small and picklable).

    Attributes:
        name: the scene's output name (task keys, messages).
        plan: what the result is (:class:`~geosal.pipeline.plan.ScenePlan`).
        settings: how it is computed (:class:`~geosal.pipeline.settings.RunSettings`).
        store: path of the scene's Zarr store (``saliency.zarr`` in its partial output folder).
    """

    name: str
    plan: ScenePlan
    settings: RunSettings
    store: str
