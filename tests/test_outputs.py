"""Output files never destroy: devices and FIFOs are written through, symlinks followed,
an output that is an input (or another output) refused, a failed write reported after
the leaderboard."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pipeline.files import atomic_write_text
from stages import Dataset, tune
from stages.cli import main

RUN = ["run", "--k", "1-3", "--quiet"]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.csv"
    rows = [
        f"{a:.3f},{b:.3f},{c}"
        for (a, b), c in zip(rng.random((40, 2)), rng.integers(0, 2, 40), strict=True)
    ]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


def test_a_device_is_written_through_not_replaced() -> None:
    before = os.stat("/dev/null")
    atomic_write_text("/dev/null", "results")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_full_device_fails_after_the_leaderboard_is_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*RUN, "--out", "/dev/full"]) == 1
    out, err = capsys.readouterr()
    assert "k-NN leaderboard" in out  # the results are not lost
    assert err.strip().splitlines() == [
        "error: --out /dev/full: could not be written (No space left on device)"
    ]
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_text(fifo, '{"ok": true}')
    reader.join(10)
    assert received == [b'{"ok": true}']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_symlink_stays_a_link_to_the_new_results(tmp_path: Path) -> None:
    target = tmp_path / "kept" / "results.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]  # no temp left


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_results_aimed_at_the_data_are_refused(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = data_file.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(data_file)
    relative = os.path.relpath(data_file)
    for option, path in (("--out", data_file), ("--events", link), ("--save-model", relative)):
        err = refused([*RUN, str(data_file), option, str(path)], capsys)
        assert f"{option} {path}: is the same file as DATA" in err
    assert data_file.read_bytes() == original


def test_two_outputs_in_one_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = tmp_path / "run.out"
    err = refused([*RUN, "--checkpoint", str(both), "--out", str(both)], capsys)
    assert "--checkpoint" in err and "is the same file as --out" in err
    err = refused([*RUN, "--events", str(both), "--checkpoint", str(both)], capsys)
    assert "same file as --events" in err and "--resume" not in err
    assert not both.exists()


def test_a_checkpoint_resumed_is_an_input_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "run.ckpt"
    assert main([*RUN, "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    recorded = checkpoint.read_bytes()
    argv = [*RUN, "--checkpoint", str(checkpoint), "--resume", "--out", str(checkpoint)]
    assert "same file as --checkpoint" in refused(argv, capsys)
    assert checkpoint.read_bytes() == recorded


def test_predictions_aimed_at_the_model_are_refused(
    data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.knn"
    assert main([*RUN, str(data_file), "--save-model", str(model)]) == 0
    capsys.readouterr()
    saved = model.read_bytes()
    err = refused(["predict", str(model), str(data_file), "--out", str(model)], capsys)
    assert "same file as MODEL" in err
    assert model.read_bytes() == saved


def test_devices_may_take_several_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RUN, "--out", "/dev/null", "--events", "/dev/null"]) == 0


@pytest.mark.parametrize("path", ["results.json/", "--"])
def test_names_that_are_no_file_are_refused(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*RUN, f"--out={path}"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_events_onto_a_full_disk_say_what_was_lost_and_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*RUN, "--events", "/dev/full"]) == 1
    out, err = capsys.readouterr()
    assert "k-NN leaderboard" in out
    assert "error: --events /dev/full: writing stopped after 0 events" in err
    assert "later events were lost" in err


async def test_a_fifo_whose_reader_stops_reading_still_lets_the_writer_be_cancelled(
    tmp_path: Path,
) -> None:
    """A write blocked on a full pipe holds the stream: cancelling must not wait to close it."""
    import asyncio

    from pipeline.files import atomic_text_file

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, and never read
    try:

        async def write() -> None:
            async with atomic_text_file(fifo) as stream:
                for _ in range(64):
                    await stream.write("x" * 65536)  # the pipe holds 64 KiB

        task = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        assert not task.done(), "the write should be blocked on the full pipe"
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done, "cancelling waited for the blocked write"
    finally:
        os.close(reader)


async def test_the_results_json_keeps_labels_that_look_like_its_own_layout() -> None:
    """Class names are the user's data, NUL characters, quotes and newlines included:
    the results JSON lists one candidate per line and still reads back whole."""
    rng = np.random.default_rng(1)
    names = ["\0candidates\0", '"\0candidates\0', '\n  "candidates": []']
    data = Dataset(X=rng.random((30, 2)), y=np.arange(30) % 3, classes=names, source="odd labels")
    with ThreadPoolExecutor(2) as executor:
        result = await tune(data, k="1-2", metrics="euclidean", cv="kfold:3", executor=executor)
    text = result.to_json()
    document = json.loads(text)
    assert document["dataset"]["classes"] == names
    assert document == json.loads(json.dumps(result.to_dict()))
    assert len(document["candidates"]) == 2
    assert sum(line.startswith('    {"rank"') for line in text.splitlines()) == 2


def _closed_stdout(*arguments: str) -> subprocess.CompletedProcess[str]:
    """The command as a process whose standard output is closed (``>&-``)."""
    command = [sys.executable, "-m", "pipeline", *arguments]
    return subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command],
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )


def test_a_closed_standard_output_costs_no_result(tmp_path: Path, data_file: Path) -> None:
    out = tmp_path / "results.json"
    done = _closed_stdout(*RUN, str(data_file), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(out.read_text())["candidates"]


def test_predictions_to_a_closed_standard_output_are_refused(
    tmp_path: Path, data_file: Path
) -> None:
    model = tmp_path / "model"
    assert main([*RUN, str(data_file), "--save-model", str(model)]) == 0
    done = _closed_stdout("predict", str(model), str(data_file))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: predict: standard output is closed, and the predictions go there without "
        "--out; give --out FILE"
    ]
