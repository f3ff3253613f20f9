"""The harness's arithmetic: a short contender's median run, and the workers' alternated
pairs (the fastest of each, the median pair).

The runs are replaced by fixed times (no run's time is asserted anywhere):
what is checked is which figures the line reports and how the goal is judged.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks import sections, startup
from benchmarks.contenders import Task
from benchmarks.data import SIZES
from benchmarks.measure import NOT_SAMPLED, Measurement, Memory, run_measured
from benchmarks.report import TIMES


def _timed(
    seconds: Iterator[float], workers: list[int] | None = None, sampled: list[bool] | None = None
) -> Callable[..., Measurement]:
    def run_isolated(task: Task, *, sample_memory: bool = True) -> Measurement:
        if workers is not None:
            workers.append(task.workers)
        if sampled is not None:
            sampled.append(sample_memory)
        took = next(seconds)
        return Measurement(took, 2 * took, Memory(took, took, took), {"scores": {}})

    return run_isolated


@pytest.fixture
def run(tmp_path: Path) -> sections.Run:
    return sections.Run(SIZES["XS"], tmp_path)


def test_a_short_contender_reports_its_median_run_and_its_largest_memory(
    run: sections.Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = [0.5, 0.3, 0.9, 0.4, 0.6]
    assert len(times) == sections.SHORT_REPEATS and max(times) < sections.SHORT_SECONDS
    monkeypatch.setattr(sections, "run_isolated", _timed(iter(times)))

    result = sections._run_contender(run, "ours")

    assert (result.seconds, result.cpu) == (0.5, 1.0)
    assert result.memory.pss_all == 0.9
    assert result.note == "median of 5 runs (0.30-0.90 s)"


def test_a_long_contender_or_a_single_repeat_runs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sections, "run_isolated", _timed(iter([sections.SHORT_SECONDS, 0.5])))
    run = sections.Run(SIZES["XS"], tmp_path)
    assert sections._run_contender(run, "ours").note == ""  # no median: one run
    once = sections.Run(SIZES["XS"], tmp_path, short_repeats=1)
    assert sections._run_contender(once, "ours").seconds == 0.5


def test_the_goal_is_judged_on_the_fastest_runs_and_the_median_pair_is_shown(
    run: sections.Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # (1 worker, 2 workers) per pair; one disturbed 2-worker run, one disturbed 1-worker run
    pairs = [(4.0, 2.5), (5.0, 2.0), (4.2, 2.3), (4.1, 4.0), (4.3, 2.2)]
    assert len(pairs) == sections.SCALING_REPEATS
    times = iter(t for pair in pairs for t in pair)
    workers: list[int] = []
    sampled: list[bool] = []
    monkeypatch.setattr(sections, "run_isolated", _timed(times, workers, sampled))

    target = sections._workers_line(run, "ours-warm", "warm pool")

    assert workers == [1, 2] * sections.SCALING_REPEATS  # alternated, 1 worker first
    assert not any(sampled)  # timed alone: no memory sampler sharing the two cores
    assert target.ok  # fastest 4.0 s against fastest 2.0 s: 2.00x
    assert target.detail.startswith(f"2.00{TIMES}")
    ratios = sorted(one / two for one, two in pairs)
    assert f"median pair {ratios[2]:.2f}{TIMES}" in target.detail  # 4.2 / 2.3 = 1.83
    printed = capsys.readouterr().out
    assert f"speed-up 2.00{TIMES}" in printed
    assert f"median of the 5 alternated pairs {ratios[2]:.2f}{TIMES}" in printed


def test_a_slow_second_worker_misses_the_goal(
    run: sections.Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = iter([4.0, 2.5] * sections.SCALING_REPEATS)
    monkeypatch.setattr(sections, "run_isolated", _timed(times))

    target = sections._workers_line(run, "ours", "cold pool")

    assert not target.ok
    assert target.detail == f"1.60{TIMES} (median pair 1.60{TIMES})"
    assert "XS" in target.goal


def test_an_even_number_of_short_repeats_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="odd"):
        sections.Run(SIZES["XS"], tmp_path, short_repeats=4)


def test_a_run_measured_for_its_time_alone_has_no_memory_figures() -> None:
    command = [sys.executable, "-c", "import time; time.sleep(0.3)"]

    timed = run_measured(command, sample_memory=False)
    sampled = run_measured(command)

    assert timed.memory is NOT_SAMPLED and math.isnan(timed.memory.pss_all)
    assert timed.wall >= 0.3 and timed.cpu > 0
    assert sampled.memory.rss_all > 1 and sampled.memory.pss_all > 1  # MiB of an interpreter


@pytest.mark.parametrize(
    ("repeats", "order"),
    [((9, 1), "sssssLssss"), ((5, 2), "ssLssLs"), ((1, 1), "sL"), ((3, 3), "sLsLsL")],
)
def test_the_short_commands_runs_bracket_the_long_ones(
    repeats: tuple[int, int], order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def run_once(command: list[str], env: dict[str, str]) -> float:
        ran.append(command[0])
        return {"s": 0.5, "L": 20.0}[command[0]]

    monkeypatch.setattr(startup, "run_once", run_once)
    short, long = startup.time_bracketing(("short", ["s"]), ("long", ["L"]), repeats, False, {})

    assert "".join(ran) == order
    assert (len(short.runs), len(long.runs)) == repeats
    assert (short.median, long.median) == (0.5, 20.0)
