"""The paired bootstrap of geosal.evaluation.uncertainty: hand-computed cases, properties, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.evaluation.scores import information_score, kar_roar_sums
from geosal.evaluation.uncertainty import (
    Estimate,
    Outcomes,
    Resampler,
    Retraining,
    bootstrap_p,
    deletion_statistics,
    holm,
    image_estimate,
    kar_roar_comparisons,
    kar_roar_scores,
    layer_scores,
    percentile_interval,
    replicates_for,
    road_statistics,
)

FRACTIONS = [0.1, 0.5, 0.9]
FAST = settings(max_examples=25, deadline=None)


def binary(rng: np.random.Generator, shape, p: float) -> np.ndarray:
    return (rng.random(shape) < p).astype(np.int8)


def retraining_cells(rng: np.random.Generator, quality: dict[str, float], seeds=(0, 1, 2), images: int = 60) -> dict:
    """method -> (mode, fraction) -> Outcomes: KAR accuracy 0.3 + quality, ROAR 0.6 - quality (per seed and image)."""
    cells = {}
    for method, q in quality.items():
        cells[method] = {}
        for mode in ("kar", "roar"):
            for f in FRACTIONS:
                correct = binary(rng, (len(seeds), images), 0.3 + q if mode == "kar" else 0.6 - q)
                cells[method][mode, f] = Outcomes(tuple(seeds), tuple(correct.mean(1)), correct)
    return cells


# --- Holm -------------------------------------------------------------------------------------------------


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # at 5 %: Holm rejects 0.005 (< 0.05 / 4) and 0.01 (< 0.05 / 3), then stops at 0.03 (> 0.05 / 2)
    assert [p < 0.05 for p in holm([0.01, 0.04, 0.03, 0.005])] == [True, False, False, True]
    # untested comparisons stay untested and do not count: m = 2
    assert holm([None, 0.02, 0.03, None]) == pytest.approx([None, 0.04, 0.04, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_is_monotone_never_below_the_raw_p_and_at_most_1(pvalues):
    adjusted = holm(pvalues)
    assert all(p <= a <= 1 for p, a in zip(pvalues, adjusted))
    for i, pi in enumerate(pvalues):
        for j, pj in enumerate(pvalues):
            if pi <= pj:
                assert adjusted[i] <= adjusted[j]


# --- p-value, interval, draws ---------------------------------------------------------------------------------


def test_bootstrap_p_value():
    assert bootstrap_p(np.zeros(99)) == 1.0  # every replicate 0: no evidence
    assert bootstrap_p(np.ones(99)) == pytest.approx(2 / 100)  # (0 + 1) / (99 + 1), doubled
    assert bootstrap_p(np.r_[np.ones(90), -np.ones(9)]) == pytest.approx(2 * 10 / 100)
    assert bootstrap_p(np.r_[np.ones(50), -np.ones(49)]) == 1.0  # min(1, 2 x 0.5)
    assert percentile_interval([np.nan, np.nan]) is None


def test_resampler_draws():
    resampler = Resampler(images=7, replicates=50, seed=3)
    weights = resampler.image_weights
    assert weights.shape == (51, 7) and (weights[0] == 1).all() and (weights.sum(1) == 7).all()
    assert (Resampler(7, 50, 3).image_weights == weights).all()  # seeded: deterministic
    assert not (Resampler(7, 50, 4).image_weights == weights).all()
    seeds = resampler.seed_weights((0, 1, 2))
    assert seeds.shape == (51, 3) and (seeds.sum(1) == 3).all()
    assert resampler.seed_weights([0, 1, 2]) is seeds  # one draw per seed set, shared by every method
    assert not (resampler.seed_weights((0, 1, 5)) == seeds).all()
    x = np.array([[1, 0, 1, 1, 0, 0, 1], [0, 0, 1, 1, 1, 1, 1]])
    track = resampler.track(x, (0, 1))
    assert track.shape == (51,) and track[0] == pytest.approx(x.mean())
    b = 1  # replicate 1 by hand: the drawn seeds' per-seed means over the drawn images
    per_seed = (weights[b] * x).sum(1) / 7
    assert track[b] == pytest.approx((seeds_two := resampler.seed_weights((0, 1))[b]) @ per_seed / 2) and seeds_two.sum() == 2
    with pytest.raises(ValueError):
        resampler.track(np.ones(6))


@FAST
@given(st.lists(st.integers(0, 1), min_size=1, max_size=40), st.integers(0, 2**16))
def test_intervals_contain_the_point_estimate_of_a_proportion(values, seed):
    result = image_estimate(np.array(values, dtype=float), Resampler(len(values), 300, seed))
    assert result.has_interval and result.low <= result.value <= result.high
    assert result.value == pytest.approx(np.mean(values)) and result.images == len(values) and result.seeds == 0


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.integers(0, 2**16))
def test_intervals_contain_the_point_estimate_of_a_mean_area(values, seed):
    result = image_estimate(np.array(values), Resampler(len(values), 300, seed))
    assert result.low <= result.value <= result.high


@FAST
@given(st.integers(1, 4), st.integers(2, 30), st.integers(0, 2**16))
def test_two_level_intervals_contain_the_point_estimate(seeds, images, seed):
    rng = np.random.default_rng(seed)
    cells = retraining_cells(rng, {"a": 0.1}, seeds=tuple(range(seeds)), images=images)
    boot = Retraining(cells, Resampler(images, 300, seed))
    for key in cells["a"]:
        cell = boot.cell("a", key)
        assert cell.low <= cell.value <= cell.high and cell.seeds == seeds and cell.image_only == (seeds == 1)
    for name, score in kar_roar_scores(boot, ["a"], FRACTIONS)["a"].items():
        if name in ("kar", "roar", "sum"):
            assert score.low <= score.value <= score.high, name


def test_a_constant_sample_has_a_zero_width_interval_on_its_value():
    result = image_estimate(np.full(13, 0.3), Resampler(13, 200))
    # the replicates' sums round differently from the mean's, by an ulp: that never excludes the value
    assert result.low <= result.value <= result.high and result.high - result.low < 1e-12


# --- the retraining protocol ------------------------------------------------------------------------------------


def test_point_estimates_are_the_plain_scores():
    rng = np.random.default_rng(0)
    cells = retraining_cells(rng, {"random": 0.0, "a": 0.2})
    boot = Retraining(cells, Resampler(60, 200))
    scores = kar_roar_scores(boot, ["random", "a"], FRACTIONS)
    accuracy = {m: {k: c.correct.mean() for k, c in cells[m].items()} for m in cells}
    kar = [accuracy["a"]["kar", f] for f in FRACTIONS]
    roar = [accuracy["a"]["roar", f] for f in FRACTIONS]
    z_kar = [accuracy["random"]["kar", f] for f in FRACTIONS]
    z_roar = [accuracy["random"]["roar", f] for f in FRACTIONS]
    assert [scores["a"][k].value for k in ("kar", "roar", "sum")] == pytest.approx(kar_roar_sums(kar, roar))
    assert scores["a"]["information"].value == pytest.approx(information_score(roar, kar, z_roar, z_kar))
    assert scores["a"]["difference"].value == pytest.approx(scores["a"]["sum"].value - scores["random"]["sum"].value)
    assert scores["random"]["information"].value == 0 and scores["random"]["information"].low == 0
    assert all(s.seeds == 3 and s.images == 60 and s.has_interval for s in scores["a"].values())


def test_identical_methods_differ_by_exactly_zero_with_p_1():
    rng = np.random.default_rng(1)
    cells = retraining_cells(rng, {"a": 0.1})
    cells["b"] = dict(cells["a"])
    comparisons = kar_roar_comparisons(Retraining(cells, Resampler(60, 300)), ["a", "b"], FRACTIONS)
    for statistic in ("sum", "kar", "roar"):
        (c,) = comparisons[statistic]
        assert (c.difference.value, c.difference.low, c.difference.high) == (0, 0, 0)
        assert c.p == 1 and c.p_holm == 1 and c.significant is False


def test_a_large_true_difference_is_significant_and_a_small_one_is_not():
    rng = np.random.default_rng(2)
    cells = retraining_cells(rng, {"good": 0.25, "random": 0.0, "twin": 0.0})
    comparisons = kar_roar_comparisons(Retraining(cells, Resampler(60, 500)), ["good", "random", "twin"], FRACTIONS)
    by_pair = {(c.first, c.second): c for c in comparisons["sum"]}
    assert by_pair["good", "random"].significant and by_pair["good", "random"].difference.low > 0
    assert by_pair["good", "random"].difference.value == pytest.approx(6 * 0.25, abs=0.3)
    assert not by_pair["random", "twin"].significant  # same true accuracy
    assert [c.p_holm >= c.p for c in comparisons["sum"]] == [True] * 3


def test_one_seed_gives_an_image_only_interval_and_pairs_use_the_shared_seeds():
    rng = np.random.default_rng(3)
    cells = retraining_cells(rng, {"many": 0.1})
    cells.update(retraining_cells(rng, {"one": 0.1}, seeds=(1,)))
    boot = Retraining(cells, Resampler(60, 200))
    scores = kar_roar_scores(boot, ["many", "one"], FRACTIONS)
    assert scores["many"]["sum"].seeds == 3 and not scores["many"]["sum"].image_only
    assert scores["one"]["sum"].seeds == 1 and scores["one"]["sum"].image_only
    (c,) = kar_roar_comparisons(boot, ["many", "one"], FRACTIONS)["sum"]
    assert c.difference.seeds == 1 and c.difference.image_only  # only seed 1 is shared
    many_seed_1 = sum(cells["many"]["kar", f].correct[1].mean() - cells["many"]["roar", f].correct[1].mean() for f in FRACTIONS)
    assert c.difference.value == pytest.approx(many_seed_1 - scores["one"]["sum"].value)
    cells["other"] = retraining_cells(rng, {"other": 0.1}, seeds=(7,))["other"]
    (none,) = kar_roar_comparisons(Retraining(cells, Resampler(60, 50)), ["one", "other"], FRACTIONS)["sum"]
    assert none.difference.value is None and none.p is None  # no shared seed: not compared


def test_cells_without_per_image_outcomes_are_point_estimates():
    rng = np.random.default_rng(4)
    cells = retraining_cells(rng, {"random": 0.0, "new": 0.1})
    cells["old"] = {k: Outcomes((0,), (0.4,), None) for k in cells["new"]}
    boot = Retraining(cells, Resampler(60, 100))
    scores = kar_roar_scores(boot, ["random", "new", "old"], FRACTIONS)
    assert scores["old"]["kar"] == Estimate(pytest.approx(1.2), seeds=1) and not scores["old"]["sum"].has_interval
    assert not scores["old"]["information"].has_interval and scores["new"]["information"].has_interval
    pairs = {(c.first, c.second): c for c in kar_roar_comparisons(boot, ["new", "old", "random"], FRACTIONS)["sum"]}
    assert pairs["new", "old"].p is None and pairs["new", "old"].difference.value is not None
    assert pairs["new", "random"].p_holm == pairs["new", "random"].p  # the only tested comparison: m = 1
    # no resampler at all (no cell has per-image outcomes)
    assert not Retraining(cells, None).cell("new", ("kar", 0.1)).has_interval


def test_information_per_replicate_skips_a_zero_accuracy():
    cells = {m: {(mode, f): Outcomes((0,), (0.5,), np.r_[np.ones(1), np.zeros(9)][None] if m == "a" else np.ones((1, 10)) * 0.5)
                 for mode in ("kar", "roar") for f in FRACTIONS} for m in ("random", "a")}
    score = kar_roar_scores(Retraining(cells, Resampler(10, 200)), ["random", "a"], FRACTIONS)["a"]["information"]
    assert score.value is not None and score.has_interval  # replicates where "a" scores 0 are left out


def test_layer_scores_follow_eq8_per_layer():
    rng = np.random.default_rng(5)
    kar, roar = ("kar", 0.025), ("roar", 0.1)
    cells = {}
    for prefix, q in (("random", 0.0), ("smoe", 0.2)):
        for k in range(1, 6):
            cells[f"{prefix}_L{k}"] = {key: Outcomes((0, 1), (0.5, 0.5), binary(rng, (2, 40), 0.4 + (q if key == kar else -q)))
                                       for key in (kar, roar)}
    boot = Retraining(cells, Resampler(40, 200))
    scores, per_layer = layer_scores(boot, ["random", "smoe"], range(1, 6), kar, roar)
    mean = {(m, key): c.correct.mean() for m, by_key in cells.items() for key, c in by_key.items()}
    expected = [(mean[f"random_L{k}", roar] - mean[f"smoe_L{k}", roar]) + (mean[f"smoe_L{k}", kar] - mean[f"random_L{k}", kar])
                for k in range(1, 6)]
    assert [e.value for e in per_layer["smoe"]] == pytest.approx(expected)
    assert scores["smoe"]["difference"].value == pytest.approx(sum(expected)) and scores["smoe"]["difference"].low > 0


# --- ROAD and deletion ---------------------------------------------------------------------------------------


def test_road_means_gaps_and_identical_methods():
    rng = np.random.default_rng(6)
    cells = {"a": {(o, f): binary(rng, 50, 0.8 - f * (0.7 if o == "morf" else 0.2)) for o in ("morf", "lerf") for f in FRACTIONS}}
    cells["twin"] = dict(cells["a"])
    cells["random"] = {(o, f): binary(rng, 50, 0.8 - 0.4 * f) for o in ("morf", "lerf") for f in FRACTIONS}
    cells["partial"] = {("morf", 0.1): 0.5}
    stats = road_statistics(cells, FRACTIONS, Resampler(50, 400))
    morf, lerf, gap = stats.means["a"]
    assert morf.value == pytest.approx(np.mean([cells["a"]["morf", f].mean() for f in FRACTIONS]))
    assert gap.value == pytest.approx(lerf.value - morf.value) and gap.low <= gap.value <= gap.high
    assert stats.means["partial"] == (None, None, None) and not stats.accuracy["partial"]["morf", 0.1].has_interval
    pairs = {(c.first, c.second): c for c in stats.comparisons}
    assert set(pairs) == {("a", "twin"), ("a", "random"), ("twin", "random")}  # best first; partial left out
    assert pairs["a", "twin"].difference.value == 0 and pairs["a", "twin"].p == 1
    assert pairs["a", "random"].significant


@pytest.mark.parametrize("methods", [2, 8, 12, 26])
def test_replicates_let_holm_reject_the_clearest_differences(methods):
    comparisons = methods * (methods - 1) // 2
    replicates = replicates_for(methods)
    assert replicates >= 2000
    assert holm([bootstrap_p(np.ones(replicates))] * comparisons)[0] <= 0.05 / 5  # the p-value floor, adjusted
    if replicates > 2000:  # the least B that does: one fewer replicate would not
        assert comparisons * 2 / replicates > 0.05 / 5


def test_road_table_of_twelve_methods_finds_the_clear_differences():
    """Twelve methods, six far apart from the other six: with 2000 replicates the p-value floor (0.001) times
    Holm's 66 stays above 5 %, so nothing could be significant; the replicates of replicates_for find all 36."""
    rng = np.random.default_rng(8)
    images = 120
    cells = {f"{'good' if k < 6 else 'poor'}{k}": {(o, f): binary(rng, images, (0.9 if o == "lerf" else 0.5) if k < 6 else 0.5)
                                                   for o in ("morf", "lerf") for f in FRACTIONS} for k in range(12)}
    floor = road_statistics(cells, FRACTIONS, Resampler(images, 2000)).comparisons
    enough = road_statistics(cells, FRACTIONS, Resampler(images, replicates_for(12))).comparisons
    assert len(enough) == 66 and not any(c.significant for c in floor)
    clear = {(c.first, c.second) for c in enough if c.significant}
    assert clear == {(c.first, c.second) for c in enough if c.first.startswith("good") != c.second.startswith("good")}


def test_deletion_gap_is_paired_over_images():
    rng = np.random.default_rng(7)
    base = rng.random(40)
    cells = {"a": {"deletion": base * 0.5, "insertion": base * 0.5 + 0.2}, "b": {"deletion": base, "insertion": base},
             "old": {"deletion": 0.3, "insertion": 0.6}}
    stats = deletion_statistics(cells, Resampler(40, 300))
    assert stats.gap["b"] == Estimate(0.0, 0.0, 0.0, 0, 40)  # the same images in both: exactly 0
    assert stats.area["old"]["insertion"] == Estimate(0.6) and stats.gap["old"] == Estimate(pytest.approx(0.3))
    pairs = {(c.first, c.second): c for c in stats.comparisons}
    assert list(pairs) == [("old", "a"), ("old", "b"), ("a", "b")]  # best insertion - deletion first
    assert pairs["a", "b"].significant and pairs["old", "a"].p is None


# --- coverage ------------------------------------------------------------------------------------------------


def test_coverage_on_simulated_binomial_data():
    """About 95 % of the intervals cover the true accuracy (loose bounds: 200 experiments, B = 300)."""
    rng = np.random.default_rng(8)
    truth, images, experiments = 0.3, 100, 200
    covered = 0
    for experiment in range(experiments):
        estimate = image_estimate(binary(rng, images, truth).astype(float), Resampler(images, 300, seed=experiment))
        covered += estimate.low <= truth <= estimate.high
    assert 0.88 <= covered / experiments <= 0.99


def test_output_is_deterministic():
    rng = np.random.default_rng(9)
    cells = retraining_cells(rng, {"a": 0.1, "b": 0.0})
    first = kar_roar_comparisons(Retraining(cells, Resampler(60, 100)), ["a", "b"], FRACTIONS)
    again = kar_roar_comparisons(Retraining(cells, Resampler(60, 100)), ["a", "b"], FRACTIONS)
    assert first == again
