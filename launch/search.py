"""Local search strategies: which hyperparameters the next trial gets.

``random``: each range sampled uniformly on its scaling ([0, 1] in ``Range.to_unit`` terms).
``bayesian``: a small tree-structured Parzen estimator (TPE), no dependencies. Finished trials
are split into the best quarter ("good") and the rest; each group's density over every range
is a Parzen window (Gaussian kernels on [0, 1] for numbers, smoothed counts for categories,
both mixed with a uniform prior so nothing has zero density). Candidates are drawn from the
good density and the one with the largest good/bad density ratio is tried next. Until three
trials have finished it samples at random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Protocol

from launch.ranges import Range

# (hyperparameters, objective) of a finished trial, objective already signed so lower is better.
Observation = tuple[dict[str, str], float]
STRATEGIES = ("bayesian", "random")


class Strategy(Protocol):
    def suggest(self, history: Sequence[Observation]) -> dict[str, str]: ...


class RandomSearch:
    def __init__(self, ranges: Sequence[Range], seed: int | None = None) -> None:
        self.ranges = list(ranges)
        self.rng = random.Random(seed)

    def suggest(self, history: Sequence[Observation]) -> dict[str, str]:
        return {r.name: r.from_unit(self.rng.random()) for r in self.ranges}


class BayesianSearch(RandomSearch):
    def __init__(self, ranges: Sequence[Range], seed: int | None = None, *,
                 startup_trials: int = 3, candidates: int = 32, gamma: float = 0.25) -> None:
        super().__init__(ranges, seed)
        self.startup_trials = startup_trials
        self.candidates = candidates
        self.gamma = gamma

    def suggest(self, history: Sequence[Observation]) -> dict[str, str]:
        if len(history) < self.startup_trials:
            return super().suggest(history)
        ordered = sorted(history, key=lambda obs: obs[1])
        cut = max(1, math.ceil(self.gamma * len(ordered)))
        good = [params for params, _ in ordered[:cut]]
        bad = [params for params, _ in ordered[cut:]]
        best: dict[str, str] = {}
        best_score = -math.inf
        for _ in range(self.candidates):
            candidate = {r.name: self._draw(r, good) for r in self.ranges}
            score = sum(math.log(_density(r, candidate[r.name], good))
                        - math.log(_density(r, candidate[r.name], bad)) for r in self.ranges)
            if score > best_score:
                best, best_score = candidate, score
        return best

    def _draw(self, r: Range, group: list[dict[str, str]]) -> str:
        """A value from the group's density: the uniform prior or one kernel, chosen evenly."""
        points = [p[r.name] for p in group if r.name in p]
        pick = self.rng.randrange(len(points) + 1)
        if pick == len(points):
            return r.from_unit(self.rng.random())
        if r.kind == "categorical":
            return points[pick]
        centre = r.to_unit(points[pick])
        return r.from_unit(self.rng.gauss(centre, _bandwidth(r, points)))


def _bandwidth(r: Range, points: list[str]) -> float:
    """Kernel width on [0, 1]: wide while few points are known, narrower as they add up."""
    units = [r.to_unit(v) for v in points]
    floor = 1.0 / (len(units) + 1)
    if len(units) < 2:
        return 0.5
    mean = sum(units) / len(units)
    spread = math.sqrt(sum((u - mean) ** 2 for u in units) / (len(units) - 1))
    return min(0.5, max(floor, spread * len(units) ** -0.2))


def _density(r: Range, value: str, group: list[dict[str, str]]) -> float:
    points = [p[r.name] for p in group if r.name in p]
    n = len(points)
    if r.kind == "categorical":
        # Smoothed frequency, per unit of [0, 1] so it mixes like the numeric case.
        return (1 + points.count(value)) / (len(r.values) + n) * len(r.values)
    u = r.to_unit(value)
    h = _bandwidth(r, points)
    kernels = sum(math.exp(-0.5 * ((u - r.to_unit(p)) / h) ** 2) / (h * math.sqrt(2 * math.pi))
                  for p in points)
    return (1.0 + kernels) / (n + 1)


def make_strategy(name: str, ranges: Sequence[Range], seed: int | None) -> Strategy:
    if name == "random":
        return RandomSearch(ranges, seed)
    if name == "bayesian":
        return BayesianSearch(ranges, seed)
    raise ValueError(f"strategy {name!r} is not one of {', '.join(STRATEGIES)} locally")
