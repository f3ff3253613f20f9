"""The grid of candidates: which ``k``, metrics and vote weightings to try.

Parsers here validate user text at the boundary and raise :class:`InputError`
with the option name and an example of what is expected.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError, OptionError

from .metrics import DEFAULT_METRICS, METRIC_REGISTRY, parse_metric
from .scaling import SCALES

__all__ = [
    "METRICS",
    "SKLEARN_METRIC",
    "WEIGHTS",
    "Candidate",
    "SearchSpace",
    "k_values",
    "parse_k",
    "parse_list",
    "parse_metrics",
    "parse_scales",
    "parse_weights",
]

METRICS = DEFAULT_METRICS
SKLEARN_METRIC = {
    name: info.sklearn for name, info in METRIC_REGISTRY.items() if not info.takes_power
}
"""Each fixed metric's name in scikit-learn (and SciPy): Sorensen's distance is Bray-Curtis.
``minkowski:P`` needs a ``p`` too: :func:`stages.metrics.sklearn_params` gives both."""
WEIGHTS = ("uniform", "distance")
MAX_K = 100_000


@dataclass(frozen=True)
class Candidate:
    """One point of the grid; ``scale`` is None when scaling is not searched."""

    k: int
    metric: str
    weights: str
    scale: str | None = None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"k": self.k, "metric": self.metric, "weights": self.weights}
        if self.scale is not None:
            params["scale"] = self.scale
        return params


@dataclass(frozen=True)
class SearchSpace:
    """Sorted distinct ``ks``; metrics, weights and scalings in the order the user gave them.

    ``scales`` empty means scaling is not searched (the features as they are,
    and no ``scale`` in the candidates' parameters).
    """

    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    weights: tuple[str, ...]
    scales: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.ks or not self.metrics or not self.weights:
            raise InputError("the search space is empty; give at least one k, metric and weighting")
        for metric in self.metrics:
            if parse_metric(metric) != metric:
                raise OptionError("metrics", f"write {metric!r} as {parse_metric(metric)!r}")
        for weight in self.weights:
            if weight not in WEIGHTS:
                raise OptionError(
                    "weights", f"unknown weighting {weight!r}; choose from {','.join(WEIGHTS)}"
                )
        if min(self.ks) < 1:
            raise OptionError("k", f"every k must be at least 1, got {min(self.ks)}")
        for name, values in (
            ("metrics", self.metrics),
            ("weights", self.weights),
            ("scale", self.scales),
        ):
            if len(set(values)) != len(values):
                raise OptionError(name, f"{', '.join(values)} names one twice; list each once")
        for scale in self.scales:
            if scale not in SCALES:
                raise OptionError(
                    "scale", f"unknown scaling {scale!r}; choose from {','.join(SCALES)}"
                )

    @property
    def searches(self) -> tuple[tuple[str | None, str], ...]:
        """The neighbour searches each fold needs: one per (scaling, metric)."""
        return tuple((scale, metric) for scale in self.scales or (None,) for metric in self.metrics)

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate, search-major (scaling, then metric: the order of the results arrays)."""
        for scale, metric in self.searches:
            for weight in self.weights:
                for k in self.ks:
                    yield Candidate(k, metric, weight, scale)

    def __len__(self) -> int:
        return len(self.ks) * len(self.searches) * len(self.weights)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "k": list(self.ks),
            "metrics": list(self.metrics),
            "weights": list(self.weights),
        }
        if self.scales:
            described["scales"] = list(self.scales)
        return described


_K_ITEM = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9})(?::([0-9]{1,9}))?)?")  # ASCII digits only


def k_values(values: Sequence[Any]) -> tuple[int, ...]:
    """``k`` given as Python values: whole numbers only (1.5 is not rounded to 1)."""
    ks: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise OptionError("k", f"{value!r} is not a whole number; give ints, e.g. [1, 3, 5]")
        ks.add(int(value))
    return tuple(sorted(ks))


def parse_k(spec: str) -> tuple[int, ...]:
    """Parse ``1-39:2``, ``1,3,5`` or a mix like ``1,5-9,20-40:10`` into sorted distinct ints."""
    example = "e.g. 1-39:2 or 1,3,5"
    values: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        match = _K_ITEM.fullmatch(part)
        if match is None:
            raise OptionError(
                "k", f"{part!r} is not a whole number or a range LOW-HIGH[:STEP]; {example}"
            )
        low_text, high_text, step_text = match.groups()
        low = int(low_text)
        high = int(high_text) if high_text else low
        step = int(step_text) if step_text else 1
        if step < 1:
            raise OptionError("k", f"the step in {part!r} must be at least 1; {example}")
        if low > high:
            raise OptionError("k", f"the range {part!r} runs backwards; {example}")
        if low < 1:
            raise OptionError("k", f"every k must be at least 1, got {low}; {example}")
        if high > MAX_K:
            raise OptionError("k", f"{high} is larger than {MAX_K}; {example}")
        values.update(range(low, high + 1, step))
    return tuple(sorted(values))


def parse_list(spec: str, allowed: Sequence[str], option: str) -> tuple[str, ...]:
    """A comma-separated list of names from ``allowed``, each once, in the user's order."""
    items = [p.strip().lower() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in items):
        raise OptionError(option, f"{spec!r} has an empty item; e.g. {','.join(allowed)}")
    unknown = [i for i in items if i not in allowed]
    if unknown:
        raise OptionError(option, f"unknown {unknown[0]!r}; choose from {','.join(allowed)}")
    if len(set(items)) != len(items):
        raise OptionError(option, f"{spec!r} names an item twice; list each once")
    return tuple(items)


def parse_metrics(spec: str) -> tuple[str, ...]:
    """Parse a comma-separated list of metric names (``minkowski:P`` too), in the user's order."""
    items = [p.strip() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in items):
        raise OptionError("metrics", f"{spec!r} has an empty item; e.g. euclidean,cosine")
    names = tuple(parse_metric(item) for item in items)
    if len(set(names)) != len(names):
        raise OptionError("metrics", f"{spec!r} names a metric twice; list each once")
    return names


def parse_weights(spec: str) -> tuple[str, ...]:
    """Parse a comma-separated list of vote weightings, keeping the user's order."""
    return parse_list(spec, WEIGHTS, "weights")


def parse_scales(spec: str) -> tuple[str, ...]:
    """Parse a comma-separated list of scalings (``none``, ``standard``, ...), in order."""
    return parse_list(spec, SCALES, "scale")
