"""Faithfulness evaluation of saliency methods (``geosal evaluate``).

Modules, one job each:

- :mod:`~geosal.evaluation.catalog`: the names, labels and families of the methods (without torch);
- :mod:`~geosal.evaluation.methods`: the registry of saliency methods (SMOE Scale and
  the other statistics, Fast-CAM, Grad-CAM(++), captum's gradient methods, random);
- :mod:`~geosal.evaluation.data`: the fixed UC Merced split, subsets, decoding;
- :mod:`~geosal.evaluation.masking`: pixel ranks and KAR / ROAR masks with random tie-breaking;
- :mod:`~geosal.evaluation.saliency_store`: compute each method's maps once, cached on disk;
- :mod:`~geosal.evaluation.kar_roar`: KAR / ROAR with retraining (and the per-layer variant);
- :mod:`~geosal.evaluation.road`: ROAD (noisy linear imputation, no retraining);
- :mod:`~geosal.evaluation.deletion`: deletion / insertion curves;
- :mod:`~geosal.evaluation.scores`: Eqs. 8 and 9, Table 2 sums, areas under curves;
- :mod:`~geosal.evaluation.cells`: resumable per-cell results;
- :mod:`~geosal.evaluation.report`: summaries, CSV and Markdown tables, plots, README;
- :mod:`~geosal.evaluation.config` (settings, validated by pydantic), :mod:`~geosal.evaluation.options`
  (how each setting is written on the command line), :mod:`~geosal.evaluation.paths`,
  :mod:`~geosal.evaluation.runner` (orchestration), :mod:`~geosal.evaluation.estimate` (cost projection).

Names are imported on first use, so ``import geosal.evaluation.config`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geosal._lazy import lazy_exports

if TYPE_CHECKING:
    from geosal.evaluation.config import EvaluationConfig
    from geosal.evaluation.methods import METHODS, Method, MethodContext, MethodOptions, get_methods
    from geosal.evaluation.scores import auc, difference_score, information_score, kar_roar_sums

__all__ = [
    "METHODS", "EvaluationConfig", "Method", "MethodContext", "MethodOptions", "auc", "difference_score",
    "get_methods", "information_score", "kar_roar_sums",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "EvaluationConfig": "config", "METHODS": "methods", "Method": "methods", "MethodContext": "methods",
    "MethodOptions": "methods", "get_methods": "methods", "auc": "scores", "difference_score": "scores",
    "information_score": "scores", "kar_roar_sums": "scores",
})
