"""geosal evaluate --estimate: measured costs projected onto the protocol's cells, seeds included."""

from __future__ import annotations

from geosal.evaluation.config import EvaluationConfig
from geosal.evaluation.estimate import estimate
from tests.paths import UCMERCED


def test_estimate_counts_every_seed_and_protocol(tmp_path, tiny_checkpoint):
    config = EvaluationConfig(
        data=UCMERCED, model=tiny_checkpoint, results=tmp_path / "results", cache=tmp_path / "cache",
        protocols=("layers", "kar-roar", "road", "deletion"), methods=("random", "smoe_prior", "smoe_learned"),
        percentages=(0.5,), retrain_seeds=(0, 1, 2), layer_seeds=(0, 1), image_size=16, saliency_size=32,
        eval_methods=("random", "smoe_prior"), eval_size=32, eval_per_class=1, deletion_steps=2, threads=1,
        train_per_class=4, val_per_class=2,
    )
    lines: list[str] = []
    result = estimate(config, log=lines.append, images=2)
    log = "\n".join(lines)
    # kar-roar: per seed the reference, random KAR (its ROAR is shared), smoe_prior and smoe_learned KAR + ROAR.
    assert result["measured"]["kar-roar"]["retrainings"] == 3 * (1 + 1 + 2 + 2)
    assert "(3 seeds)" in log and "layers:" in log and "road:" in log and "deletion:" in log
    assert set(result["projected_seconds"]) == {"kar-roar", "layers", "road", "deletion"}
    assert all(seconds > 0 for seconds in result["projected_seconds"].values())
    epoch = result["measured"]["retraining_epoch_seconds"]
    assert result["projected_seconds"]["kar-roar"] > 18 * config.epochs * epoch  # 18 retrainings of `epochs` epochs each
