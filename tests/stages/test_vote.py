"""Voting for every k against a plain per-row, per-k reference."""

from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import numpy.typing as npt
import pytest

from stages import _kernels
from stages.vote import (
    VoteShares,
    neighbour_weights,
    normalise,
    predict_every_k,
    vote_every_k,
)


def reference_predict(
    labels: npt.NDArray[np.intp],
    distances: npt.NDArray[np.float64],
    k: int,
    weighting: str,
    n_classes: int,
) -> list[int]:
    """Loop over rows: weigh the first k neighbours' votes; ties go to the smallest class."""
    predictions = []
    for row_labels, row_distances in zip(labels, distances, strict=True):
        first_labels = [int(c) for c in row_labels[:k]]
        first_distances = [float(d) for d in row_distances[:k]]
        votes = [0.0] * n_classes
        if weighting == "uniform":
            for c in first_labels:
                votes[c] += 1.0
        elif any(d == 0.0 for d in first_distances):
            for c, d in zip(first_labels, first_distances, strict=True):
                if d == 0.0:
                    votes[c] += 1.0
        else:
            for c, d in zip(first_labels, first_distances, strict=True):
                votes[c] += 1.0 / d
        best = max(votes)
        predictions.append(votes.index(best))  # first maximum: the smallest class code
    return predictions


def check_against_reference(
    labels: npt.NDArray[np.intp],
    distances: npt.NDArray[np.float64],
    ks: list[int],
    weightings: list[str],
    n_classes: int,
) -> npt.NDArray[np.int16]:
    got = predict_every_k(labels, distances, ks, weightings, n_classes)
    assert got.shape == (len(weightings), len(ks), labels.shape[0])
    for w, weighting in enumerate(weightings):
        for i, k in enumerate(ks):
            expected = reference_predict(labels, distances, k, weighting, n_classes)
            bad = np.flatnonzero(got[w, i] != expected)
            assert bad.size == 0, (
                f"{weighting} k={k}: row {bad[0]} predicted {got[w, i, bad[0]]}, "
                f"expected {expected[bad[0]]}; labels {labels[bad[0], :k].tolist()}, "
                f"distances {distances[bad[0], :k].tolist()}"
            )
    return got


def sorted_neighbours(
    rng: np.random.Generator, rows: int, depth: int, n_classes: int, distinct: int | None
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Random neighbour labels and ascending distances (few distinct values when asked)."""
    labels = rng.integers(0, n_classes, size=(rows, depth)).astype(np.intp)
    if distinct is None:
        distances = rng.uniform(0.1, 5.0, size=(rows, depth))
    else:
        distances = rng.integers(1, distinct + 1, size=(rows, depth)).astype(float) / 4.0
    return labels, np.sort(distances, axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_uniform_and_distance_votes_match_the_reference(seed: int, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    labels, distances = sorted_neighbours(rng, 200, 16, n_classes, distinct=None)
    ks = list(range(1, 17))
    check_against_reference(labels, distances, ks, ["uniform", "distance"], n_classes)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_votes_with_tied_distances_and_tied_counts(seed: int) -> None:
    """Few distinct distances: weighted votes tie exactly too (e.g. 1/d + 1/d against 2/d)."""
    rng = np.random.default_rng(seed)
    labels, distances = sorted_neighbours(rng, 300, 10, 3, distinct=3)
    got = check_against_reference(labels, distances, list(range(1, 11)), ["distance", "uniform"], 3)
    # Precondition: the data produced uniform vote ties that the smaller class won.
    two = got[1, 1]  # uniform, k=2
    split = labels[:, 0] != labels[:, 1]
    assert split.any()
    assert np.array_equal(two[split], np.minimum(labels[split, 0], labels[split, 1]))


@pytest.mark.parametrize("seed", [0, 1])
def test_votes_with_zero_distances(seed: int) -> None:
    """Rows with exact matches: under "distance" only the zero-distance neighbours vote."""
    rng = np.random.default_rng(seed)
    labels, distances = sorted_neighbours(rng, 300, 9, 4, distinct=None)
    zeros = rng.integers(0, 4, size=300)  # 0..3 exact matches at the front of each row
    for r, z in enumerate(zeros):
        distances[r, :z] = 0.0
    got = check_against_reference(labels, distances, [1, 2, 3, 4, 5, 9], ["uniform", "distance"], 4)
    # A single exact match wins outright under "distance", whatever the other neighbours say.
    single = zeros == 1
    assert single.any()
    assert np.array_equal(got[1, 5, single], labels[single, 0])


def test_ks_in_any_order_and_repeated_vote_as_their_sorted_distinct_ks() -> None:
    rng = np.random.default_rng(4)
    labels, distances = sorted_neighbours(rng, 120, 12, 3, distinct=4)
    given = [7, 2, 12, 2, 1]
    votes = vote_every_k(labels, distances, given, ["uniform", "distance"], 3)
    ordered = vote_every_k(labels, distances, [1, 2, 7, 12], ["uniform", "distance"], 3)
    place = [2, 1, 3, 1, 0]
    np.testing.assert_array_equal(votes.predictions, ordered.predictions[:, place])
    np.testing.assert_array_equal(votes.shares.values, ordered.shares.values[:, place])
    check_against_reference(labels, distances, given, ["distance"], 3)


def test_strided_neighbour_lists_vote_as_their_copies() -> None:
    rng = np.random.default_rng(8)
    labels, distances = sorted_neighbours(rng, 50, 12, 3, distinct=None)
    every_other = labels[:, ::2], distances[:, ::2]
    votes = vote_every_k(*every_other, [1, 3, 6], ["uniform", "distance"], 3)
    copies = vote_every_k(*(a.copy() for a in every_other), [1, 3, 6], ["uniform", "distance"], 3)
    np.testing.assert_array_equal(votes.predictions, copies.predictions)
    np.testing.assert_array_equal(votes.shares.values, copies.shares.values)


@pytest.mark.parametrize(
    ("ks", "columns_high", "message"),
    [
        ([2, 1], 3, "ks must ascend"),
        ([1, 1], 3, "ks must ascend"),
        ([0, 1], 3, "ks must ascend"),
        ([1, 5], 3, "ks must ascend"),
        ([1, 2], 4, "class column is out of range"),
    ],
)
def test_the_vote_kernel_refuses_what_it_cannot_vote(
    ks: list[int], columns_high: int, message: str
) -> None:
    """Bad arguments raise instead of writing outside the arrays."""
    rng = np.random.default_rng(0)
    columns = rng.integers(0, 3, size=(10, 4)).astype(np.intp)
    columns[0, 0] = columns_high - 1
    weights = np.ones((10, 4))
    winners = np.empty((2, 10), dtype=np.intp)
    votes = np.empty((2, 10, 3))
    with pytest.raises(ValueError, match=message):
        _kernels.vote(columns, weights, np.array(ks, dtype=np.intp), winners, votes)


def test_the_vote_kernel_refuses_mismatched_shapes_and_types() -> None:
    columns = np.zeros((10, 4), dtype=np.intp)
    ks = np.array([1, 2], dtype=np.intp)
    winners = np.empty((2, 10), dtype=np.intp)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.vote(columns, np.ones((10, 3)), ks, winners, np.empty((2, 10, 3)))
    with pytest.raises(ValueError, match="shapes"):
        _kernels.vote(columns, np.ones((10, 4)), ks, winners, np.empty((3, 10, 3)))
    with pytest.raises(TypeError, match="float64"):
        _kernels.vote(columns, np.ones((10, 4), np.float32), ks, winners, np.empty((2, 10, 3)))
    with pytest.raises(TypeError, match="intp"):
        _kernels.vote(columns.astype(np.int32), np.ones((10, 4)), ks, winners, np.empty((2, 10, 3)))


def test_exact_matches_outvoted_by_near_neighbours_still_win() -> None:
    labels = np.array([[2, 0, 0, 0, 0], [1, 2, 0, 0, 0], [2, 1, 0, 0, 0]], dtype=np.intp)
    distances = np.array(
        [[0.0, 1e-9, 1e-9, 1e-9, 1e-9], [0.0, 0.0, 1e-12, 1e-12, 1e-12], [0.0, 0.0, 0.5, 0.5, 0.5]]
    )
    got = predict_every_k(labels, distances, [1, 2, 5], ["distance", "uniform"], 3)
    assert got[0].tolist() == [[2, 1, 2], [2, 1, 1], [2, 1, 1]]  # distance: ties 1-vs-2 -> 1
    assert got[1].tolist() == [[2, 1, 2], [0, 1, 1], [0, 0, 0]]  # uniform
    assert got.dtype == np.int32


def test_distance_weights_by_hand() -> None:
    labels = np.array([[0, 1, 1]], dtype=np.intp)
    distances = np.array([[1.0, 3.0, 3.0]])  # class 0: 1, class 1: 2/3
    got = predict_every_k(labels, distances, [1, 2, 3], ["distance", "uniform"], 2)
    assert got[0, :, 0].tolist() == [0, 0, 0]
    assert got[1, :, 0].tolist() == [0, 0, 1]  # uniform k=2: 1-1 tie -> class 0


def test_classes_missing_from_the_neighbours() -> None:
    """Only high class codes among the neighbours: the prediction is not a class with no votes."""
    labels = np.array([[4, 4, 3], [3, 4, 4]], dtype=np.intp)
    distances = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    got = predict_every_k(labels, distances, [1, 2, 3], ["uniform", "distance"], 5)
    assert got[0].tolist() == [[4, 3], [4, 3], [4, 4]]  # uniform: k=2 ties 3-vs-4 -> 3
    assert got[1].tolist() == [[4, 3], [4, 3], [4, 3]]  # distance: 1 > 1/2 + 1/3


def reference_shares(
    labels: npt.NDArray[np.intp],
    distances: npt.NDArray[np.float64],
    ks: list[int],
    weightings: list[str],
    n_classes: int,
) -> npt.NDArray[np.float64]:
    """Every class's share ``(W, K, rows, classes)``: weights summed, then divided."""
    shares = np.zeros((len(weightings), len(ks), labels.shape[0], n_classes))
    for w, weighting in enumerate(weightings):
        weight = neighbour_weights(distances, weighting)
        for i, k in enumerate(ks):
            for r in range(labels.shape[0]):
                np.add.at(shares[w, i, r], labels[r, :k], weight[r, :k])
            shares[w, i] /= shares[w, i].sum(axis=1, keepdims=True)
    return shares


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_classes", [12, 500])
def test_more_classes_than_neighbours_keep_only_the_neighbours_classes(
    seed: int, n_classes: int
) -> None:
    """Each row's shares hold the (at most k_max) classes of its neighbours: the same
    predictions, ties included, and the same shares as a vote over every class."""
    rng = np.random.default_rng(seed)
    labels, distances = sorted_neighbours(rng, 150, 8, n_classes, distinct=3)
    labels[:, 4:] = labels[:, :4]  # classes recur, so counts tie and sum
    ks, weightings = [1, 2, 5, 8], ["uniform", "distance"]
    check_against_reference(labels, distances, ks, weightings, n_classes)
    votes = vote_every_k(labels, distances, ks, weightings, n_classes)
    shares = votes.shares
    assert shares.classes is not None and shares.values.shape == (2, 4, 150, 8)
    for row, classes in zip(labels, shares.classes, strict=True):
        distinct = np.unique(row)  # ascending, then -1 pads
        assert classes.tolist() == [*distinct.tolist(), *[-1] * (8 - distinct.size)]
    expected = reference_shares(labels, distances, ks, weightings, n_classes)
    np.testing.assert_allclose(shares.dense(n_classes), expected, rtol=0, atol=1e-12)
    truth = rng.integers(0, n_classes, 150)
    np.testing.assert_array_equal(
        shares.of(truth), shares.dense(n_classes)[:, :, np.arange(150), truth]
    )
    for code in (int(labels[0, 0]), n_classes - 1):
        np.testing.assert_array_equal(shares.column(code), shares.dense(n_classes)[..., code])
    again = VoteShares.from_dense(expected, 8)
    np.testing.assert_array_equal(again.dense(n_classes), expected)


def test_vote_memory_does_not_grow_with_the_classes() -> None:
    """An identifier-like label: 40,000 classes, where a vote over every class would
    take rows x k x classes (2,000 x 30 x 40,000 float64: 19 GB)."""
    rng = np.random.default_rng(0)
    labels, distances = sorted_neighbours(rng, 2000, 30, 40_000, distinct=None)
    tracemalloc.start()
    try:
        votes = vote_every_k(labels, distances, list(range(1, 31)), ["uniform", "distance"], 40_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    shares_bytes = votes.shares.values.nbytes
    assert shares_bytes == 2 * 30 * 2000 * 30 * 8
    assert peak < shares_bytes + (16 << 20)
    assert votes.predictions.max() > np.iinfo(np.int16).max  # codes past int16 survive


# ---------------------------------------------------------------------------- shares


@pytest.mark.parametrize("width", [1, 2, 3, 6, 7, 8, 9, 40])
@pytest.mark.parametrize("shape", [(500,), (4, 300)])
def test_normalised_shares_divide_by_the_row_totals_numpy_sums(
    width: int, shape: tuple[int, ...]
) -> None:
    """What scikit-learn's predict_proba computes, ``votes / votes.sum(axis=1)``, to within a
    rounding of the total, whichever way the total is added; in place, rows summing to 1."""
    rng = np.random.default_rng(width)
    votes = rng.random((*shape, width)) * rng.integers(0, 30, (*shape, width))
    votes[..., 0] += 1.0  # no empty row
    expected = votes / votes.sum(axis=-1, keepdims=True)
    shares = normalise(votes)
    assert shares is votes
    np.testing.assert_allclose(shares, expected, rtol=4e-16, atol=0)
    np.testing.assert_allclose(shares.sum(axis=-1), 1.0, rtol=1e-14)


# ---------------------------------------------------------------------------- weights


def test_neighbour_weights_uniform_is_ones() -> None:
    distances = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    weights = neighbour_weights(distances, "uniform")
    assert weights.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]


def test_neighbour_weights_distance_is_inverse() -> None:
    distances = np.array([[0.5, 1.0, 4.0], [2.0, 2.0, 8.0]])
    weights = neighbour_weights(distances, "distance")
    np.testing.assert_array_equal(weights, 1.0 / distances)


def test_neighbour_weights_with_zero_distances() -> None:
    """A row with a zero: 1 for each zero, 0 for the rest; rows without zeros keep 1/d."""
    distances = np.array(
        [
            [0.0, 0.5, 2.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0],
            [0.25, 0.5, 1.0],
        ]
    )
    weights = neighbour_weights(distances.copy(), "distance")
    assert weights.tolist() == [
        [1.0, 0.0, 0.0],
        [1.0, 1.0, 0.0],
        [1.0, 1.0, 1.0],
        [4.0, 2.0, 1.0],
    ]
    assert np.isfinite(weights).all()


def test_neighbour_weights_with_infinite_distances() -> None:
    """Masked neighbours (infinite distance) weigh nothing."""
    distances = np.array([[1.0, np.inf], [0.0, np.inf]])
    assert neighbour_weights(distances, "distance").tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_neighbour_weights_refuses_unknown_weighting() -> None:
    with pytest.raises(ValueError):
        neighbour_weights(np.ones((1, 2)), "gaussian")


def test_float32_distances_are_voted_too() -> None:
    """A float32 run's distances: uniform votes do not look at them, and distance
    weights are their inverses in float32, added in float64."""
    rng = np.random.default_rng(11)
    labels, distances = sorted_neighbours(rng, 60, 8, 3, distinct=None)
    single = distances.astype(np.float32)
    votes = vote_every_k(labels, single, [1, 4, 8], ["uniform", "distance"], 3)
    wide = vote_every_k(labels, single.astype(np.float64), [1, 4, 8], ["uniform", "distance"], 3)
    np.testing.assert_array_equal(votes.predictions[0], wide.predictions[0])
    np.testing.assert_array_equal(votes.shares.values[0], wide.shares.values[0])
    np.testing.assert_allclose(votes.shares.values[1], wide.shares.values[1], rtol=1e-6)


@pytest.mark.parametrize(
    ("n_classes", "depth", "ks", "weightings"),
    [
        (3, 20, list(range(1, 21)), ["uniform", "distance"]),
        (3, 20, [7, 3, 7, 20], ["distance", "uniform"]),  # unordered, repeated
        (40, 12, list(range(1, 13)), ["uniform", "distance"]),  # fewer columns than classes
        (2, 300, [1, 256, 300], ["uniform"]),  # counts past a byte
    ],
)
def test_shares_pickle_compactly_and_come_back_to_the_last_bit(
    n_classes: int, depth: int, ks: list[int], weightings: list[str]
) -> None:
    rng = np.random.default_rng(depth)
    labels, distances = sorted_neighbours(rng, 150, depth, n_classes, distinct=3)
    distances[:5, :2] = 0.0  # exact matches
    shares = vote_every_k(labels, distances, ks, weightings, n_classes).shares
    back = pickle.loads(pickle.dumps(shares))
    assert back.values.tobytes() == shares.values.tobytes()
    assert back.counted == shares.counted == (weightings.index("uniform"),)
    assert back.ks == tuple(ks)
    if shares.classes is None:
        assert back.classes is None
    else:
        assert back.classes is not None and np.array_equal(back.classes, shares.classes)
    count_bytes = 1 if max(ks) <= 255 else 2
    uniform_bytes = shares.values.nbytes // len(weightings)
    saved = uniform_bytes - uniform_bytes // 8 * count_bytes
    plain = len(pickle.dumps((shares.values, shares.classes)))
    assert len(pickle.dumps(shares)) <= plain - saved + 1024
    again = pickle.loads(pickle.dumps(back))
    assert again.values.tobytes() == shares.values.tobytes()


def test_shares_not_known_to_be_counts_pickle_as_they_are() -> None:
    shares = VoteShares(np.full((1, 2, 3, 2), 0.5))
    back = pickle.loads(pickle.dumps(shares))
    assert back.counted == () and back.values.tobytes() == shares.values.tobytes()
