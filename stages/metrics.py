"""The distance metrics: one registry that the parser, the kernel, the help text, the
model's scikit-learn twin and ``KNNSearchCV`` all read.

A metric is named as the user writes it: ``euclidean``, ``manhattan``,
``chebyshev``, ``sorensen`` (SciPy's and scikit-learn's ``braycurtis``),
``cosine`` (scikit-learn's cosine distance: 1 minus the cosine similarity,
a zero row at distance 1 from every other), or ``minkowski:P`` for a real
``P >= 1``. A new metric is one entry here and one loop in the kernel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import OptionError

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_REGISTRY",
    "MetricInfo",
    "from_sklearn",
    "kernel_metric",
    "largest_summable",
    "metric_help",
    "metric_info",
    "parse_metric",
    "sklearn_params",
]


@dataclass(frozen=True)
class MetricInfo:
    """One metric: its kernel code, its scikit-learn name, a line of help, and its
    domain (``non_negative``: meant for data without negative values, where it is a
    metric; the tuning warns when the data has some). ``summed_power`` is the power
    of the differences (or values) the kernel adds up, which decides how large
    features may be before the sums overflow. ``relative_cost`` is a unit's time
    against Manhattan's on the same rows (bench M's kernels): the plan sends a fold's
    costliest units first, so the last of a run to finish are its shortest."""

    name: str
    code: int
    sklearn: str
    about: str
    takes_power: bool = False
    non_negative: bool = False
    summed_power: float = 1.0
    relative_cost: float = 1.0


METRIC_REGISTRY: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo(
            "euclidean", 0, "euclidean", "straight-line distance", summed_power=2, relative_cost=0.7
        ),
        MetricInfo("manhattan", 1, "manhattan", "sum of absolute differences"),
        MetricInfo("chebyshev", 2, "chebyshev", "largest absolute difference"),
        MetricInfo(
            "sorensen",
            3,
            "braycurtis",
            "Bray-Curtis, for non-negative data",
            non_negative=True,
            relative_cost=1.25,
        ),
        MetricInfo(
            "cosine",
            4,
            "cosine",
            "1 - cosine similarity (angle, not length)",
            summed_power=2,
            relative_cost=0.7,
        ),
        MetricInfo(
            "minkowski", 5, "minkowski", "(sum |x - y|^P)^(1/P), P >= 1", True, relative_cost=2.0
        ),
    )
}

DEFAULT_METRICS = ("euclidean", "manhattan", "chebyshev", "sorensen")
"""Searched when no metrics are named: the four of the classic k-NN case study."""

_MINKOWSKI = re.compile(r"minkowski:(.+)")


def _power_text(power: float) -> str:
    return str(int(power)) if power.is_integer() else repr(power)


def parse_metric(text: str, option: str = "metrics") -> str:
    """``text`` as a registered metric name, or one clear :class:`InputError`."""
    name = text.strip().lower()
    if name in METRIC_REGISTRY and not METRIC_REGISTRY[name].takes_power:
        return name
    match = _MINKOWSKI.fullmatch(name)
    if match is not None:
        try:
            power = float(match.group(1))
        except ValueError:
            power = math.nan
        if not (math.isfinite(power) and power >= 1):
            raise OptionError(
                option, f"{text!r} needs a power P >= 1, e.g. minkowski:3 or minkowski:1.5"
            )
        return f"minkowski:{_power_text(power)}"
    names = ", ".join(n if not i.takes_power else "minkowski:P" for n, i in METRIC_REGISTRY.items())
    raise OptionError(option, f"unknown metric {text!r}; choose from {names}")


def metric_info(name: str) -> MetricInfo:
    """The registry's entry for a parsed metric name (``minkowski:3`` is ``minkowski``)."""
    return _split(name)[0]


def _split(name: str) -> tuple[MetricInfo, float]:
    base, _, power = name.partition(":")
    return METRIC_REGISTRY[base], float(power) if power else 2.0


def kernel_metric(name: str) -> tuple[int, float]:
    """The kernel's metric code and power for a parsed name."""
    info, power = _split(name)
    return info.code, power


def largest_summable(name: str, features: int, dtype: Any) -> float:
    """The largest feature magnitude whose distances over ``features`` columns the
    kernel sums without overflowing ``dtype``: a difference is at most twice it,
    raised to the metric's summed power, added ``features`` times."""
    info, power = _split(name)
    exponent = power if info.takes_power else info.summed_power
    room = float(np.finfo(dtype).max) / max(features, 1)
    return 0.5 * float(room ** (1 / exponent))


def sklearn_params(name: str) -> dict[str, Any]:
    """``KNeighborsClassifier`` keywords for a parsed name: ``metric`` and, for Minkowski, ``p``."""
    info, power = _split(name)
    if info.takes_power:
        return {"metric": info.sklearn, "p": power}
    return {"metric": info.sklearn}


_SKLEARN_ALIASES = {
    "euclidean": "euclidean",
    "l2": "euclidean",
    "manhattan": "manhattan",
    "cityblock": "manhattan",
    "l1": "manhattan",
    "chebyshev": "chebyshev",
    "infinity": "chebyshev",
    "braycurtis": "sorensen",
    "sorensen": "sorensen",
    "cosine": "cosine",
}


def from_sklearn(metric: Any, p: Any = None) -> str | None:
    """Our name for scikit-learn's ``metric`` (and ``p`` for Minkowski); None if we have none."""
    if not isinstance(metric, str):
        return None
    if metric == "minkowski":
        power = 2.0 if p is None else p
        if isinstance(power, bool) or not isinstance(power, int | float) or not power >= 1:
            return None
        if math.isinf(power):
            return "chebyshev"
        return {1.0: "manhattan", 2.0: "euclidean"}.get(
            float(power), f"minkowski:{_power_text(float(power))}"
        )
    return _SKLEARN_ALIASES.get(metric)


def metric_help() -> str:
    """The metrics for ``--help``."""
    return "; ".join(
        f"{name}{':P' if info.takes_power else ''}: {info.about}"
        for name, info in METRIC_REGISTRY.items()
    )
