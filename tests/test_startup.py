"""What starting a run costs: the modules it imports, and the forkserver started ahead.

A run imports neither scikit-learn, SciPy nor pandas (a second of start-up
together, more than the whole Iris tuning): folds and built-in data sets
are ours, equal to scikit-learn's (see tests/stages/test_splitters_equal_sklearn.py
and tests/stages/test_builtin_data.py).
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.prestart import server_preload
from stages import entry

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "scipy", "pandas")

IN_PROCESS = """
import sys
from stages.cli import main
status = main(sys.argv[1:])
print(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY)))
sys.exit(status)
""".replace("HEAVY", repr(HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--cv", "holdout:0.2"],
        ["wine", "--cv", "loo", "--k", "1-5"],
        ["breast_cancer", "--weights", "uniform,distance", "--k", "3"],
        ["digits", "--scale", "standard,robust", "--k", "1-3", "--save-model", "{tmp}/m.knn"],
    ],
)
def test_a_run_imports_no_scikit_learn_scipy_or_pandas(args: list[str], tmp_path: Path) -> None:
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, "run", "--quiet", "--workers", "2", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]
    assert "candidates" in done.stdout  # the leaderboard was printed


def test_the_script_runs_the_same_entry_as_python_m_pipeline() -> None:
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="knn-pipeline")
    assert script.load() is entry.main


def test_the_installed_script_runs_a_tuning(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("knn-pipeline")
    done = subprocess.run(
        [str(script), "run", "--k", "1-3", "--quiet", "--out", "results.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "12 candidates" in done.stdout
    assert (tmp_path / "results.json").exists()


def test_the_entry_preloads_what_the_workers_preload() -> None:
    from stages.neighbours import WORKER_PRELOAD

    assert tuple(entry.WORKER_PRELOAD) == tuple(WORKER_PRELOAD)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], True),
        (["run", "wine", "--k", "1-5"], True),
        (["predict", "model.knn", "new.csv"], True),
        (["run", "--dask", "local:2"], False),
        (["run", "--dask=tcp://host:8786"], False),
        (["predict", "m.knn", "x.csv", "--dask", "local"], False),
        (["run", "--help"], False),
        (["run", "-h"], False),
        (["logs", "--listen", "127.0.0.1:0"], False),
        (["report", "results.json"], False),
        ([], False),
        (["--help"], False),
    ],
)
def test_the_forkserver_starts_early_only_for_local_workers(
    argv: list[str], expected: bool
) -> None:
    assert entry._will_start_workers(argv) is expected


PRESTART = """
import os, sys
from multiprocessing import forkserver
from pipeline.prestart import prestart_forkserver
os.environ["OPENBLAS_NUM_THREADS"] = "7"
os.environ.pop("MKL_NUM_THREADS", None)
prestart_forkserver(["tests.workers"])
print(forkserver._forkserver._forkserver_pid)
print(os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS"))
sys.stdin.readline()  # the server lives while this process does
"""


def server_threads_once_numpy_is_in(pid: int) -> int:
    """The forkserver's threads once it has loaded OpenBLAS (its preload, before any fork:
    forking stops OpenBLAS's threads)."""
    process = psutil.Process(pid)
    for _ in range(1000):
        if any("openblas" in m.path for m in process.memory_maps()):
            time.sleep(0.1)  # OpenBLAS starts its threads as it loads
            return process.num_threads()
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never loaded OpenBLAS: {process.cmdline()}")


def test_the_forkserver_runs_single_threaded_blas_and_the_caller_keeps_its_own() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PRESTART],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        server = int(proc.stdout.readline())
        assert proc.stdout.readline().split() == ["7", "None"]
        threads = server_threads_once_numpy_is_in(server)
        proc.stdin.write("\n")
        proc.stdin.flush()
    assert proc.returncode == 0
    assert threads == 1  # the caller's OPENBLAS_NUM_THREADS=7 would start one per core


def test_the_server_preloads_its_environment_then_the_worker_module_first_and_once() -> None:
    first = ["pipeline.forkserver_env", "pipeline.worker", "threadpoolctl"]
    last = "pipeline.forkserver_frozen"
    assert server_preload(["stages.neighbours"]) == [*first, "stages.neighbours", last]
    assert server_preload(["pipeline.worker", "x", last]) == [*first, "x", last]


def test_the_servers_last_preload_freezes_what_it_imported() -> None:
    script = (
        "import gc, numpy\n"
        "before = gc.get_freeze_count()\n"
        "import pipeline.forkserver_frozen\n"
        "print(before, gc.get_freeze_count(), len(gc.get_objects()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, frozen, walked = map(int, done.stdout.split())
    assert before == 0
    assert frozen > 10_000  # NumPy's objects among them
    assert walked < frozen / 10


THREADS = """
from pipeline.prestart import leave_arithmetic_to_workers
leave_arithmetic_to_workers()
import numpy
from threadpoolctl import threadpool_info
print(sorted({pool["num_threads"] for pool in threadpool_info()}))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "[1]"), ("2", "[2]")])
def test_the_command_lines_own_blas_runs_one_thread_unless_told(
    given: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    if given is not None:
        env.update(OPENBLAS_NUM_THREADS=given, OMP_NUM_THREADS=given, MKL_NUM_THREADS=given)
    done = subprocess.run(
        [sys.executable, "-c", THREADS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_the_forkserver_environment_module_puts_the_callers_environment_back() -> None:
    probe = (
        "import os, pipeline.forkserver_env\n"
        "from threadpoolctl import threadpool_info\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ.get('MKL_NUM_THREADS'),"
        " sorted({p['num_threads'] for p in threadpool_info()}))"
    )
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    shown = (
        subprocess.run(
            [sys.executable, "-c", probe],
            env={**environment, "OPENBLAS_NUM_THREADS": "7"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(maxsplit=2)
    )
    assert shown == ["7", "None", "[1]"]  # NumPy's BLAS on one thread, the variables as given
