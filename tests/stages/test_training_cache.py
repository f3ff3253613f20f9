"""A worker keeps the training sets of the folds its units are at, and only those."""

from __future__ import annotations

import numpy as np

from pipeline.shared import InlineArray
from stages import neighbours
from stages.neighbours import UnitInputs, _training_set


def inputs() -> UnitInputs:
    rng = np.random.default_rng(0)
    rows = 60
    return UnitInputs(
        token="t",
        X=InlineArray(rng.random((rows, 3))),
        y=InlineArray(rng.integers(0, 2, rows)),
        fold_of_row=InlineArray(np.arange(rows) % 3),
        test_order=InlineArray(np.arange(rows)),
        ks=(1, 3),
        weights=("uniform",),
        n_classes=2,
    )


def cached_folds() -> set[int]:
    return {fold for _token, fold, _scale in neighbours._training_cache}


def test_one_thread_keeps_one_fold_at_a_time() -> None:
    run = inputs()
    with _training_set(run, 0) as first:
        pass
    with _training_set(run, 0) as again:
        assert again is first  # reused while units of the fold arrive
    with _training_set(run, 1):
        assert cached_folds() == {1}  # fold 0 is done: dropped


def test_a_fold_another_thread_is_at_stays() -> None:
    run = inputs()
    with _training_set(run, 0) as held:
        with _training_set(run, 1), _training_set(run, 2):
            assert cached_folds() == {0, 1, 2}  # each has a unit running
        with _training_set(run, 0) as again:
            assert again is held
    with _training_set(run, 2):
        assert cached_folds() == {2}
    assert not neighbours._folds_in_use
