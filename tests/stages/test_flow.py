"""The stages' stream protocol: a stream begins with its plan, once."""

from __future__ import annotations

import pytest

from pipeline.channel import Channel
from stages.flow import RankStage, score_stage


async def test_a_stream_that_ends_before_its_plan_ends_the_stage_quietly() -> None:
    inbox: Channel[object] = Channel(1)
    outbox: Channel[object] = Channel(1)
    inbox.sender.close()
    await score_stage(inbox.receiver, outbox.sender)  # type: ignore[arg-type]
    assert outbox.closed
    assert [item async for item in outbox.receiver] == []
    rank = RankStage()
    empty: Channel[object] = Channel(1)
    empty.sender.close()
    await rank(empty.receiver)  # type: ignore[arg-type]
    assert rank.ranked() == [] and rank.plan is None


async def test_a_stream_that_does_not_begin_with_its_plan_is_refused() -> None:
    inbox: Channel[object] = Channel(2)
    await inbox.sender.send("not a plan")
    inbox.sender.close()
    with pytest.raises(TypeError, match="must begin with its Plan, not str"):
        await RankStage()(inbox.receiver)  # type: ignore[arg-type]
