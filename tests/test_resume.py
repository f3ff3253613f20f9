"""Checkpoints: a run killed at any point resumes to exactly the results of an undisturbed run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import InputError
from stages.checkpoint import CheckpointFile
from stages.plan import WorkUnit
from stages.vote import VoteShares
from tests.leaks import SHM_DIR, descendants, wait_for_exit, wait_for_segments_gone

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ["--k", "1-30", "--weights", "uniform,distance", "--workers", "2", "--quiet"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    X = rng.random((2500, 16))
    y = rng.integers(0, 3, 2500)
    path = tmp_path_factory.mktemp("data") / "data.npz"
    np.savez(path, X=X, y=y)
    return path


@pytest.fixture(scope="module")
def undisturbed(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("whole") / "results.json"
    done = run([str(data_file), *OPTIONS, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    return without_timing(json.loads(out.read_text()))


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def without_timing(results: dict) -> dict:  # type: ignore[type-arg]
    results.pop("timing")
    return results


def units_recorded(checkpoint: Path) -> int:
    if not checkpoint.exists():
        return 0
    return max(0, checkpoint.read_bytes().count(b"\n") - 1)


@pytest.mark.parametrize(
    ("signum", "after_units"),
    [(signal.SIGKILL, 0), (signal.SIGKILL, 3), (signal.SIGINT, 8), (signal.SIGTERM, 12)],
)
def test_a_killed_run_resumes_to_the_same_results(
    data_file: Path,
    undisturbed: dict,
    tmp_path: Path,
    signum: int,
    after_units: int,  # type: ignore[type-arg]
) -> None:
    checkpoint = tmp_path / "run.ckpt"
    out = tmp_path / "results.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(data_file),
            *OPTIONS,
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    helpers: set[int] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        helpers |= descendants(proc.pid)
        if checkpoint.exists() and units_recorded(checkpoint) >= after_units:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    helpers |= descendants(proc.pid)
    proc.send_signal(signum)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == (-signal.SIGKILL if signum == signal.SIGKILL else 130)
    if signum != signal.SIGKILL and after_units > 0:  # what it had, marked as partial
        assert "[PARTIAL: interrupted]" in stdout
    assert not out.exists()
    assert wait_for_exit(helpers) == set(), "worker processes outlived the run"
    assert wait_for_segments_gone(proc.pid) == set()
    recorded = units_recorded(checkpoint)
    resumed = run(
        [str(data_file), *OPTIONS, "--checkpoint", str(checkpoint), "--resume", "--out", str(out)]
    )
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(json.loads(out.read_text())) == undisturbed
    header = json.loads(checkpoint.read_text().splitlines()[0])
    assert units_recorded(checkpoint) == len(header["units"]) >= recorded


def test_resume_refuses_a_checkpoint_of_other_options(data_file: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.ckpt"
    first = run([str(data_file), "--k", "1-3", "--quiet", "--checkpoint", str(checkpoint)])
    assert first.returncode == 0, first.stderr
    for changed in (
        ["--k", "1-4"],
        ["--k", "1-3", "--seed", "1"],
        ["--k", "1-3", "--metrics", "euclidean"],
        ["--k", "1-3", "--precision", "float32"],
    ):
        other = run(
            [str(data_file), *changed, "--quiet", "--checkpoint", str(checkpoint), "--resume"]
        )
        assert other.returncode == 2
        assert "made for other data or other options" in other.stderr
    again = run([str(data_file), "--k", "1-3", "--quiet", "--checkpoint", str(checkpoint)])
    assert again.returncode == 2 and "add --resume" in again.stderr


def units(n: int) -> list[WorkUnit]:
    return [WorkUnit(i, "euclidean", 0, 10 * i, 10 * i + 10) for i in range(n)]


def shares_of(predictions: np.ndarray, classes: int = 3) -> VoteShares:
    """Vote shares that put everything on the predicted class."""
    return VoteShares(np.eye(classes)[predictions.astype(np.intp)])


def test_a_torn_last_line_is_cut_and_a_damaged_middle_line_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    writer = CheckpointFile(path, resume=False)
    writer.begin("run-a", units(3))
    for unit in units(3)[:2]:
        predictions = np.full((1, 2, 10), unit.id, dtype=np.int32)
        writer.record(unit, predictions, shares_of(predictions))
    writer.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # the second record torn mid-write
    reader = CheckpointFile(path, resume=True)
    other_blocks = [WorkUnit(0, "euclidean", 0, 0, 15), WorkUnit(1, "euclidean", 0, 15, 30)]
    plan, done = reader.begin("run-a", other_blocks)  # as planned for other workers
    assert plan == units(3) and sorted(done) == [0]  # the checkpoint's plan is followed
    predictions, shares = done[0]
    assert (predictions == 0).all() and predictions.shape == (1, 2, 10)
    assert np.array_equal(shares.values, shares_of(predictions).values)
    ones = np.ones((1, 2, 10), dtype=np.int32)
    reader.record(units(3)[1], ones, shares_of(ones))
    reader.close()
    assert sorted(CheckpointFile(path, resume=True).begin("run-a", units(3))[1]) == [0, 1]

    lines = path.read_text().splitlines()
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r":2: a damaged record"):
        CheckpointFile(path, resume=True).begin("run-a", units(3))
    with pytest.raises(InputError, match="other data or other options"):
        CheckpointFile(path, resume=True).begin("run-b", units(3))


def test_resume_needs_a_checkpoint() -> None:
    from stages.cli import main

    assert main(["run", "--resume"]) == 2


def test_a_record_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    writer = CheckpointFile(path, resume=False)
    writer.begin("run-a", units(2), (1, 2, 3, 3))
    three_ks = np.zeros((1, 3, 10), dtype=np.int32)  # three k values, not two
    writer.record(units(2)[0], three_ks, shares_of(three_ks))
    writer.close()
    with pytest.raises(
        InputError, match=r":2: unit 0 has shape \(1, 3, 10, 3\), expected \(1, 2, 10, 3\)"
    ):
        CheckpointFile(path, resume=True).begin("run-a", units(2), (1, 2, 3, 3))


def recorded(path: Path, n: int = 2, classes: int = 3) -> list[str]:
    """A checkpoint of ``n`` units, each unit's predictions its id; its lines."""
    writer = CheckpointFile(path, resume=False)
    writer.begin("run-a", units(n), (1, 2, classes, classes))
    for unit in units(n):
        predictions = np.full((1, 2, 10), unit.id, dtype=np.int32)
        writer.record(unit, predictions, shares_of(predictions))
    writer.close()
    return path.read_text().splitlines()


def rewrite(path: Path, lines: list[str], number: int, change: dict) -> None:  # type: ignore[type-arg]
    """Line ``number`` (1-based) with ``change`` applied, its checksum kept or as given."""
    record = json.loads(lines[number - 1])
    record.update(change)
    lines[number - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def test_an_edited_record_that_still_decodes_is_refused(tmp_path: Path) -> None:
    import base64

    path = tmp_path / "c.ckpt"
    lines = recorded(path)
    codes = base64.b64encode(np.full((1, 2, 10), 2, dtype="<i4").tobytes()).decode()
    rewrite(path, lines, 3, {"predictions": codes})  # other classes, the same shape
    with pytest.raises(InputError, match=r"c.ckpt:3: the record was changed or damaged"):
        CheckpointFile(path, resume=True).begin("run-a", units(2), (1, 2, 3, 3))


def test_an_edited_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    lines = recorded(path)
    rewrite(path, lines, 1, {"units": [[0, "euclidean", 0, 0, 10], [1, "nosuch", 7, 10, 99]]})
    with pytest.raises(InputError, match=r"c.ckpt:1: the header was changed or damaged"):
        CheckpointFile(path, resume=True).begin("run-a", units(2), (1, 2, 3, 3))


def test_class_codes_the_run_cannot_make_are_refused(tmp_path: Path) -> None:
    """A record whose checksum is intact but whose codes name no class (all -1, or 5 of 3)."""
    for code in (-1, 5):
        path = tmp_path / f"c{code}.ckpt"
        writer = CheckpointFile(path, resume=False)
        writer.begin("run-a", units(1), (1, 2, 3, 3))
        writer.record(
            units(1)[0],
            np.full((1, 2, 10), code, dtype=np.int32),
            VoteShares(np.zeros((1, 2, 10, 3))),
        )
        writer.close()
        with pytest.raises(InputError, match=r":2: unit 0 holds class codes outside 0..2"):
            CheckpointFile(path, resume=True).begin("run-a", units(1), (1, 2, 3, 3))


def test_a_plan_that_does_not_fit_the_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    recorded(path)
    longer = [*units(2), WorkUnit(2, "euclidean", 0, 20, 30)]  # this run has more rows
    with pytest.raises(InputError, match="does not cover every test row once"):
        CheckpointFile(path, resume=True).begin("run-a", longer, (1, 2, 3, 3))
    with pytest.raises(InputError, match="other metrics or scalings"):
        CheckpointFile(path, resume=True).begin(
            "run-a", [WorkUnit(0, "manhattan", 0, 0, 20)], (1, 2, 3, 3)
        )


def test_a_checkpoint_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only (as root sees it only through the file system, so the refusal is simulated)."""
    from stages import checkpoint

    path = tmp_path / "c.ckpt"
    recorded(path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint, "open", refuse, raising=False)
    with pytest.raises(InputError, match=r"c.ckpt: cannot be written \(Permission denied\)"):
        CheckpointFile(path, resume=True).begin("run-a", units(2), (1, 2, 3, 3))


def semaphores() -> set[str]:
    """Named POSIX semaphores (multiprocessing's queues and locks), by their files."""
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith("sem.")}


def test_kill_9_of_the_whole_process_group_leaves_no_segment(
    data_file: Path, tmp_path: Path
) -> None:
    """What ``docker kill`` and ``timeout -s KILL`` do: every process of the group dies
    at once, multiprocessing's resource tracker too; the segment janitor, in a session of
    its own, still unlinks the run's shared memory and the pool's semaphores."""
    import os

    already = semaphores()
    checkpoint = tmp_path / "run.ckpt"
    command = [sys.executable, "-m", "pipeline", "run", str(data_file), *OPTIONS]
    process = subprocess.Popen(
        [*command, "--checkpoint", str(checkpoint)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as under a supervisor
    )
    deadline = time.monotonic() + 120
    while units_recorded(checkpoint) < 2:  # the data are in shared memory, units running
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pools = semaphores() - already
    assert pools, "the pool's queues hold named semaphores"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert not wait_for_segments_gone(process.pid)
    deadline = time.monotonic() + 10
    while semaphores() & pools and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not semaphores() & pools


def test_shares_of_some_classes_only_round_trip_and_their_codes_are_checked(
    tmp_path: Path,
) -> None:
    """With more classes than neighbours a record holds each row's classes too."""
    rng = np.random.default_rng(3)
    classes = np.sort(rng.choice(50, size=(10, 3), replace=False), axis=1).astype(np.int32)
    classes[0, 2] = -1  # a row whose neighbours hold two classes
    values = rng.random((1, 2, 10, 3)) * (classes >= 0)
    predictions = np.repeat(classes[None, None, :, 0], 2, axis=1)
    path = tmp_path / "sparse.ckpt"
    writer = CheckpointFile(path, resume=False)
    writer.begin("run-a", units(1), (1, 2, 50, 3))
    writer.record(units(1)[0], predictions, VoteShares(values, classes))
    writer.close()
    _, done = CheckpointFile(path, resume=True).begin("run-a", units(1), (1, 2, 50, 3))
    got_predictions, got = done[0]
    assert got.classes is not None
    np.testing.assert_array_equal(got_predictions, predictions)
    np.testing.assert_array_equal(got.classes, classes)
    np.testing.assert_array_equal(got.values, values)
    with pytest.raises(InputError, match=r"has shape \(1, 2, 10, 3\), expected \(1, 2, 10, 4\)"):
        CheckpointFile(path, resume=True).begin("run-a", units(1), (1, 2, 50, 4))
    with pytest.raises(InputError, match=r"holds class codes outside 0..29"):
        CheckpointFile(path, resume=True).begin("run-a", units(1), (1, 2, 30, 3))
