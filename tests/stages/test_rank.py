"""Ranks compare true means exactly, whatever the last bit of a float sum says."""

from __future__ import annotations

import numpy as np
import pytest

from stages.rank import Leaderboard
from stages.score import SCORES, FoldScores
from stages.search_space import SearchSpace


def board(hits: list[list[int]], sizes: list[int]) -> Leaderboard:
    """A leaderboard of one metric and weighting, one candidate per row of ``hits``."""
    space = SearchSpace(
        ks=tuple(range(1, len(hits) + 1)), metrics=("euclidean",), weights=("uniform",)
    )
    leaderboard = Leaderboard(space, len(sizes), sizes)
    for fold, size in enumerate(sizes):
        accuracy = np.array([[row[fold] / size for row in hits]])
        leaderboard.add(FoldScores(fold, 0, {name: accuracy for name in SCORES}))
    return leaderboard


def test_equal_true_means_share_a_rank_when_their_float_means_differ() -> None:
    hits = [[27, 28, 29, 30, 30], [30, 30, 29, 28, 27], [28, 29, 29, 29, 29], [27, 28, 29, 29, 30]]
    means = [np.mean(np.array(h) / 30) for h in hits]
    assert means[0] != means[2]  # 0.9600000000000002 and 0.96: the same 144 hits of 150
    ranked = board(hits, [30] * 5).ranked()
    assert [(r.candidate.k, r.rank) for r in ranked] == [(1, 1), (2, 1), (3, 1), (4, 4)]
    for row in ranked:  # the reported means stay scikit-learn's np.mean
        assert row.mean_accuracy == means[row.candidate.k - 1]


def test_unequal_fold_sizes_are_compared_exactly() -> None:
    # 1/3 + 2/4 and 2/3 + 1/4: means 0.41666... and 0.458333...; 1/3 + 2/4 == 5/12 twice
    hits = [[1, 2], [2, 1], [1, 2]]
    ranked = board(hits, [3, 4]).ranked()
    assert [(r.candidate.k, r.rank) for r in ranked] == [(2, 1), (1, 2), (3, 2)]


@pytest.mark.parametrize("sizes", [[7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61]])
def test_fold_sizes_whose_common_multiple_is_huge_still_rank_exactly(sizes: list[int]) -> None:
    first = [s - 1 for s in sizes]
    second = list(first)
    second[0], second[1] = first[0] - 1, first[1]  # one hit fewer: a smaller true mean
    leaderboard = board([first, second, list(first)], sizes)
    ranked = leaderboard.ranked()
    assert [(r.candidate.k, r.rank) for r in ranked] == [(1, 1), (3, 1), (2, 3)]


@pytest.mark.parametrize("scoring", ["accuracy", "roc_auc_ovr"])
def test_running_means_follow_the_folds_in_any_order(scoring: str) -> None:
    """Kept as folds arrive (in any order, some scores undefined), the means equal the
    mean over the folds done, and np.mean of them all once every fold is in."""
    rng = np.random.default_rng(3)
    space = SearchSpace(ks=(1, 2, 3), metrics=("euclidean", "manhattan"), weights=("uniform",))
    folds = 7
    values = rng.random((len(space.searches), 1, 3, folds))
    if scoring != "accuracy":
        values[0, 0, 1, 2] = np.nan  # an undefined score in one fold
    leaderboard = Leaderboard(space, folds, scoring=scoring)
    cells = [(search, fold) for search in range(2) for fold in range(folds)]
    done: list[tuple[int, int]] = []
    for at in rng.permutation(len(cells)):
        search, fold = cells[at]
        scores = {name: rng.random((1, 3)) for name in SCORES}
        scores[scoring] = values[search, :, :, fold]
        leaderboard.add(FoldScores(fold, search, scores))
        done.append((search, fold))
        for index in range(len(leaderboard.candidates)):
            search_of, k_of = divmod(index, 3)
            mine = [values[search_of, 0, k_of, f] for s, f in sorted(done) if s == search_of]
            if len(mine) == folds:
                assert leaderboard.mean_score(index) == np.mean(np.array(mine)) or (
                    np.isnan(np.mean(mine)) and np.isnan(leaderboard.mean_score(index))
                )
            elif not mine or all(np.isnan(mine)):
                assert np.isnan(leaderboard.mean_score(index))
            else:
                assert leaderboard.mean_score(index) == pytest.approx(np.nanmean(mine))
            assert leaderboard.folds_done(index) == len(mine)
    assert leaderboard.complete and leaderboard.cells == (2 * folds, 2 * folds)


def test_a_fold_scored_twice_is_refused() -> None:
    leaderboard = board([[1, 2]], [2, 2])
    with pytest.raises(ValueError, match="already in"):
        leaderboard.add(FoldScores(0, 0, {name: np.array([[0.5]]) for name in SCORES}))


@pytest.mark.parametrize("folds_in", [3, 7])
def test_every_score_s_mean_and_std_are_those_of_its_fold_values(folds_in: int) -> None:
    """Taken for the whole board at once, each candidate's means and standard deviations
    equal np.mean and np.std of its listed fold values to the bit, an undefined fold
    making them undefined, on a board still filling (3 of 7 folds) and a full one."""
    rng = np.random.default_rng(5)
    space = SearchSpace(ks=(1, 2, 3, 4), metrics=("euclidean",), weights=("uniform", "distance"))
    leaderboard = Leaderboard(space, 7)
    for fold in rng.permutation(7)[:folds_in]:
        scores = {name: rng.random((2, 4)) for name in SCORES}
        scores["roc_auc_ovr"][1, 2] = np.nan
        leaderboard.add(FoldScores(int(fold), 0, scores))
    ranked = leaderboard.ranked()
    assert len(ranked) == 8
    for row in ranked:
        assert row.folds_done == folds_in
        for name in SCORES:
            values = row.fold_scores[name]
            assert len(values) == folds_in
            for got, want in ((row.mean(name), np.mean(values)), (row.std(name), np.std(values))):
                assert got == want or (np.isnan(got) and np.isnan(want)), (name, got, want)
        entry = row.to_dict()
        undefined = row.candidate.weights == "distance" and row.candidate.k == 3
        assert (entry["mean_roc_auc_ovr"] is None) == undefined
        assert entry["std_accuracy"] == np.std(row.fold_accuracy)
