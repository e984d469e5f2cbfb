"""One scene end to end: plan -> pass 1 -> statistics -> pass 2 -> export.

The block and chunk functions (:func:`run_block`, :func:`run_chunk`) are pure
functions of a picklable :class:`ScenePlan`, so the same code runs in-process
or on Dask workers (:mod:`geosal.cluster`).
"""

from geosal.pipeline.executor import Executor, InProcessExecutor
from geosal.pipeline.pass1 import run_block
from geosal.pipeline.pass2 import SceneStatistics, run_chunk
from geosal.pipeline.plan import PlanError, ScaleGrid, ScenePlan, plan_scene
from geosal.pipeline.scene import OutputError, PreparedScene, SceneResult, execute_scene, prepare_scene, run_scene

__all__ = [
    "Executor", "InProcessExecutor", "OutputError", "PlanError", "ScaleGrid", "ScenePlan", "SceneResult",
    "PreparedScene", "SceneStatistics", "execute_scene", "plan_scene", "prepare_scene", "run_block", "run_chunk", "run_scene",
]
