"""The built-in data sets, read from scikit-learn's files, equal its loaders' output."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sklearn import datasets

from pipeline.errors import InputError
from stages import builtin_data
from stages.builtin_data import BUILTIN_DATASETS, read_builtin
from stages.load import load_dataset


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_builtin_equals_scikit_learns_loader(name: str) -> None:
    bunch = getattr(datasets, BUILTIN_DATASETS[name])()
    ours = read_builtin(name)
    assert ours.data.dtype == np.float64
    np.testing.assert_array_equal(ours.data, bunch.data, strict=True)
    np.testing.assert_array_equal(ours.target, bunch.target)
    assert ours.feature_names == [str(f) for f in bunch.feature_names]
    assert ours.target_names == [str(t) for t in bunch.target_names]


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
async def test_load_dataset_gives_the_loaders_data_names_and_classes(name: str) -> None:
    bunch = getattr(datasets, BUILTIN_DATASETS[name])()
    dataset = await load_dataset(name)
    np.testing.assert_array_equal(dataset.X, bunch.data)
    np.testing.assert_array_equal(dataset.y, bunch.target)
    assert dataset.classes == [str(t) for t in bunch.target_names]
    assert dataset.feature_names == [str(f) for f in bunch.feature_names]
    assert dataset.label_name == "target"
    assert dataset.source == name


def test_without_scikit_learn_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def no_sklearn(name: str, *args: Any) -> Any:
        return None if name == "sklearn" else real(name, *args)

    monkeypatch.setattr(builtin_data.importlib.util, "find_spec", no_sklearn)
    with pytest.raises(InputError, match=r"^iris: .*scikit-learn.*pip install scikit-learn"):
        read_builtin("iris")


def test_files_elsewhere_fall_back_to_scikit_learns_loader(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    moved_spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])  # no datasets/

    def moved(name: str, *args: Any) -> Any:
        return moved_spec if name == "sklearn" else real(name, *args)

    monkeypatch.setattr(builtin_data.importlib.util, "find_spec", moved)
    found = read_builtin("wine")
    np.testing.assert_array_equal(found.data, datasets.load_wine().data)
    assert found.target_names == ["class_0", "class_1", "class_2"]
