"""The names of the per-location statistics, without importing torch.

The functions live in :mod:`geosal.saliency.statistics`; configuration code
(:mod:`geosal.config`) validates names against this table so it can stay
light. A test checks that both agree.
"""

from __future__ import annotations

from typing import NamedTuple


class StatisticName(NamedTuple):
    """``label``: the name the paper's tables use; ``pre_activation``: needs the tensor before the activation."""

    label: str
    pre_activation: bool = False


STATISTIC_NAMES: dict[str, StatisticName] = {
    "smoe_scale": StatisticName("SMOE Scale"),
    "smoe_scale_magnitude": StatisticName("SMOE Scale of |x|"),
    "std": StatisticName("STD"),
    "mean": StatisticName("Mean"),
    "max": StatisticName("Max"),
    "shannon_entropy": StatisticName("Shannon Ent"),
    "log_normal_mean": StatisticName("Log Normal Mean"),
    "log_normal_entropy": StatisticName("Log Normal ENT"),
    "truncated_normal_mean": StatisticName("Trunc Normal Mean", pre_activation=True),
    "truncated_normal_std": StatisticName("Trunc Normal Std", pre_activation=True),
    "truncated_normal_entropy": StatisticName("Trunc Normal Ent", pre_activation=True),
    "gamma_scale_mle": StatisticName("Gamma Scale (MLE)"),
}
"""Every statistic, by registry name, in the order of the paper's Table 1 (SMOE Scale first)."""
