from __future__ import annotations

import numpy as np
import pytest

from pipeline.compute import ComputePool
from pipeline.shared import InlineArray, SharedArrayHandle, SharedArrays
from tests import workers
from tests.leaks import segments


async def test_workers_attach_the_same_data_read_only() -> None:
    data = np.arange(12.0).reshape(3, 4)
    async with ComputePool(workers=2) as pool:
        with SharedArrays() as shared:
            ref = shared.share(data)
            assert isinstance(ref, SharedArrayHandle)
            sums = [await pool.run(workers.array_sum, ref) for _ in range(4)]
            assert await pool.run(workers.array_is_read_only, ref)
    assert sums == [data.sum()] * 4


def test_every_segment_is_unlinked_on_close_and_on_error() -> None:
    with SharedArrays() as shared:
        shared.share(np.ones(10))
        names = set(shared.segment_names)
        assert names <= segments()
    assert not names & segments()

    with pytest.raises(RuntimeError), SharedArrays() as shared:
        shared.share(np.ones(10))
        names = set(shared.segment_names)
        raise RuntimeError
    assert not names & segments()


def test_inline_mode_carries_the_array_itself() -> None:
    with SharedArrays(use_shared_memory=False) as shared:
        ref = shared.share(np.arange(3))
        assert isinstance(ref, InlineArray)
        assert ref.attach().tolist() == [0, 1, 2]
        assert shared.segment_names == []


def test_empty_arrays_can_be_shared() -> None:
    with SharedArrays() as shared:
        ref = shared.share(np.empty((0, 3)))
        assert ref.attach().shape == (0, 3)
