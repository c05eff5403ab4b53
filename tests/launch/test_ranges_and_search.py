"""Ranges map to [0, 1] the way SageMaker's scalings do; the Bayesian search homes in."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from launch.ranges import DEFAULT_RANGES, Range, load_file, parse_flag, ranges_from
from launch.search import BayesianSearch, RandomSearch


def test_flags_parse_every_type_and_scaling():
    assert parse_flag("lr=continuous:0.001:0.1:log") == Range("lr", "continuous", 0.001, 0.1,
                                                               scaling="log")
    assert parse_flag("epochs=integer:5:20") == Range("epochs", "integer", 5, 20)
    assert parse_flag("batch-size=categorical:32,64") == Range(
        "batch-size", "categorical", values=("32", "64"))
    assert parse_flag("momentum=continuous:0.5:0.999:reverse-log").scaling == "reverse-log"


@pytest.mark.parametrize("flag, message", [
    ("lr=continuous:0.1", "MIN:MAX"),
    ("lr=continuous:0.1:0.01", "must be below"),
    ("lr=continuous:0:1:log", "min > 0"),
    ("m=continuous:0.5:1.5:reverse-log", "max < 1"),
    ("lr=uniform:0:1", "is not one of"),
    ("lr", "must look like"),
])
def test_bad_flags_say_what_is_wrong(flag, message):
    with pytest.raises(ValueError, match=message):
        parse_flag(flag)


def test_defaults_are_the_seed_ranges_and_flags_win_over_the_file(tmp_path):
    assert ranges_from([], None) == list(DEFAULT_RANGES)
    path = tmp_path / "ranges.json"
    path.write_text(json.dumps({
        "lr": {"type": "Continuous", "min": 0.01, "max": 0.2, "scaling": "Logarithmic"},
        "epochs": {"type": "integer", "min": 1, "max": 3}}))
    assert load_file(path)[0] == Range("lr", "continuous", 0.01, 0.2, scaling="log")
    ranges = {r.name: r for r in ranges_from(["lr=continuous:0.1:0.5"], path)}
    assert ranges["lr"] == Range("lr", "continuous", 0.1, 0.5)
    assert ranges["epochs"] == Range("epochs", "integer", 1, 3)


def test_log_scaling_spends_equal_shares_on_each_decade():
    lr = Range("lr", "continuous", 0.0001, 0.1, scaling="log")
    assert float(lr.from_unit(0.0)) == pytest.approx(0.0001)
    assert float(lr.from_unit(1 / 3)) == pytest.approx(0.001)
    assert float(lr.from_unit(1.0)) == pytest.approx(0.1)
    assert lr.to_unit("0.01") == pytest.approx(2 / 3)


def test_reverse_log_scaling_is_fine_near_one():
    momentum = Range("momentum", "continuous", 0.9, 0.999, scaling="reverse-log")
    assert float(momentum.from_unit(0.5)) == pytest.approx(1 - math.sqrt(0.1 * 0.001))
    assert momentum.to_unit(momentum.from_unit(0.3)) == pytest.approx(0.3, abs=1e-4)


def test_integers_and_categories_are_drawn_evenly():
    search = RandomSearch([Range("n", "integer", 1, 4),
                           Range("c", "categorical", values=("a", "b", "c"))], seed=0)
    draws = [search.suggest([]) for _ in range(3000)]
    for name, values in (("n", ["1", "2", "3", "4"]), ("c", ["a", "b", "c"])):
        counts = [sum(d[name] == v for d in draws) for v in values]
        assert min(counts) > 0.8 * len(draws) / len(values), counts


def test_bayesian_search_proposes_better_points_than_random():
    ranges = [Range("lr", "continuous", 0.0001, 1, scaling="log"),
              Range("bs", "categorical", values=("16", "32", "64", "128"))]

    def loss(hps: dict[str, str]) -> float:
        return (math.log10(float(hps["lr"])) + 2) ** 2 + (hps["bs"] != "32")

    def best_after(search: RandomSearch, trials: int) -> float:
        history: list[tuple[dict[str, str], float]] = []
        for _ in range(trials):
            hps = search.suggest(history)
            history.append((hps, loss(hps)))
        return min(value for _, value in history)

    # Over a few seeds, the typical (median) Bayesian run ends closer to the optimum.
    bayesian = [best_after(BayesianSearch(ranges, seed=s), 15) for s in range(9)]
    random = [best_after(RandomSearch(ranges, seed=s), 15) for s in range(9)]
    assert statistics.median(bayesian) < statistics.median(random) / 2
