"""TuningOptions: text or values, validated once, describing itself once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.errors import OptionError
from stages import Tuning, TuningOptions


def test_text_and_python_values_give_the_same_options() -> None:
    from_text = TuningOptions.of(
        k="1-5:2", metrics="euclidean,minkowski:3", weights="uniform,distance", scale="none"
    )
    from_values = TuningOptions.of(
        k=[5, 3, 1, 3],
        metrics=("euclidean", "minkowski:3"),
        weights=["uniform", "distance"],
        scale=["none"],
    )
    assert from_text == from_values
    assert from_text.describe() == {
        "k": [1, 3, 5],
        "metrics": ["euclidean", "minkowski:3"],
        "weights": ["uniform", "distance"],
        "scales": ["none"],
        "cv": "kfold:5",
        "seed": 0,
        "missing": "error",
    }


def test_precision_is_described_only_when_not_the_exact_default() -> None:
    assert "precision" not in TuningOptions.of().describe()
    assert TuningOptions.of(precision="float32").describe()["precision"] == "float32"
    with pytest.raises(OptionError) as caught:
        TuningOptions.of(precision="float16")
    assert caught.value.parameter == "precision"


def test_options_are_frozen() -> None:
    options = TuningOptions.of()
    with pytest.raises(AttributeError):
        options.seed = 3  # type: ignore[misc]


def test_options_object_and_keywords_are_not_both_taken() -> None:
    with pytest.raises(TypeError, match="not both"):
        Tuning("iris", TuningOptions.of(), k="1,3")


async def test_the_results_record_what_decided_them() -> None:
    options = TuningOptions.of(k="1,3", metrics="manhattan", seed=4, cv="kfold:3")
    result = await Tuning("iris", options, executor=ThreadPoolExecutor(1)).run()
    assert result.to_dict()["options"] == options.describe()
    assert result.to_dict()["cv"]["seed"] == 4
