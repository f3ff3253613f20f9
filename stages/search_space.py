"""The grid of candidates: which ``k``, metrics and vote weightings to try.

Parsers here validate user text at the boundary and raise :class:`InputError`
with the option name and an example of what is expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError

__all__ = [
    "METRICS",
    "SKLEARN_METRIC",
    "WEIGHTS",
    "Candidate",
    "SearchSpace",
    "parse_k",
    "parse_metrics",
    "parse_weights",
]

METRICS = ("euclidean", "manhattan", "chebyshev", "sorensen")
SKLEARN_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}
"""Each metric's name in scikit-learn (and SciPy): Sorensen's distance is Bray-Curtis."""
WEIGHTS = ("uniform", "distance")
MAX_K = 100_000


@dataclass(frozen=True)
class Candidate:
    """One point of the grid."""

    k: int
    metric: str
    weights: str

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "metric": self.metric, "weights": self.weights}


@dataclass(frozen=True)
class SearchSpace:
    """Sorted distinct ``ks``, and metrics and weights in the order the user gave them."""

    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    weights: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.ks or not self.metrics or not self.weights:
            raise InputError("the search space is empty; give at least one k, metric and weighting")
        for metric in self.metrics:
            if metric not in METRICS:
                raise InputError(
                    f"--metrics: unknown metric {metric!r}; choose from {','.join(METRICS)}"
                )
        for weight in self.weights:
            if weight not in WEIGHTS:
                raise InputError(
                    f"--weights: unknown weighting {weight!r}; choose from {','.join(WEIGHTS)}"
                )
        if min(self.ks) < 1:
            raise InputError(f"--k: every k must be at least 1, got {min(self.ks)}")

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate, metric-major (the order of the results arrays)."""
        for metric in self.metrics:
            for weight in self.weights:
                for k in self.ks:
                    yield Candidate(k, metric, weight)

    def __len__(self) -> int:
        return len(self.ks) * len(self.metrics) * len(self.weights)

    def describe(self) -> dict[str, Any]:
        return {"k": list(self.ks), "metrics": list(self.metrics), "weights": list(self.weights)}


_K_ITEM = re.compile(r"(\d{1,9})(?:-(\d{1,9})(?::(\d{1,9}))?)?")


def parse_k(spec: str) -> tuple[int, ...]:
    """Parse ``1-39:2``, ``1,3,5`` or a mix like ``1,5-9,20-40:10`` into sorted distinct ints."""
    example = "e.g. --k 1-39:2 or --k 1,3,5"
    values: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        match = _K_ITEM.fullmatch(part)
        if match is None:
            raise InputError(
                f"--k: {part!r} is not a whole number or a range LOW-HIGH[:STEP]; {example}"
            )
        low_text, high_text, step_text = match.groups()
        low = int(low_text)
        high = int(high_text) if high_text else low
        step = int(step_text) if step_text else 1
        if step < 1:
            raise InputError(f"--k: the step in {part!r} must be at least 1; {example}")
        if low > high:
            raise InputError(f"--k: the range {part!r} runs backwards; {example}")
        if low < 1:
            raise InputError(f"--k: every k must be at least 1, got {low}; {example}")
        if high > MAX_K:
            raise InputError(f"--k: {high} is larger than {MAX_K}; {example}")
        values.update(range(low, high + 1, step))
    return tuple(sorted(values))


def _parse_list(spec: str, allowed: Sequence[str], option: str) -> tuple[str, ...]:
    items = [p.strip().lower() for p in spec.split(",")]
    if not spec.strip() or any(not p for p in items):
        raise InputError(f"{option}: {spec!r} has an empty item; e.g. {option} {','.join(allowed)}")
    unknown = [i for i in items if i not in allowed]
    if unknown:
        raise InputError(f"{option}: unknown {unknown[0]!r}; choose from {','.join(allowed)}")
    if len(set(items)) != len(items):
        raise InputError(f"{option}: {spec!r} names an item twice; list each once")
    return tuple(items)


def parse_metrics(spec: str) -> tuple[str, ...]:
    """Parse a comma-separated list of metric names, keeping the user's order."""
    return _parse_list(spec, METRICS, "--metrics")


def parse_weights(spec: str) -> tuple[str, ...]:
    """Parse a comma-separated list of vote weightings, keeping the user's order."""
    return _parse_list(spec, WEIGHTS, "--weights")
