"""One scene end to end: plan -> pass 1 -> statistics -> pass 2 -> export.

The block functions (:func:`run_block`, :func:`render_block`) are pure
functions of a picklable :class:`SceneJob` (a :class:`ScenePlan`, the
:class:`RunSettings` and the store), so the same code runs in-process or on
Dask workers (:mod:`geosal.cluster`).
"""

from geosal.pipeline.executor import Executor, InProcessExecutor
from geosal.pipeline.job import SceneJob
from geosal.pipeline.pass1 import run_block
from geosal.pipeline.pass2 import SceneStatistics, render_block
from geosal.pipeline.plan import PlanError, ScaleGrid, ScenePlan, plan_scene
from geosal.pipeline.runner import RunnerCache, RunnerKey, TileRunner, runner_key
from geosal.pipeline.scene import OutputError, PreparedScene, SceneResult, execute_scene, prepare_scene, run_scene
from geosal.pipeline.settings import RunSettings

__all__ = [
    "Executor", "InProcessExecutor", "OutputError", "PlanError", "PreparedScene", "RunSettings", "RunnerCache", "RunnerKey",
    "ScaleGrid", "SceneJob", "ScenePlan", "SceneResult", "SceneStatistics", "TileRunner", "execute_scene", "plan_scene",
    "prepare_scene", "render_block", "run_block", "run_scene", "runner_key",
]
