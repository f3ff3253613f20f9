"""The S command as whole processes: this checkout against another revision, in turns.

    python benchmarks/compare_revisions.py ad577e2             # 10 pairs on S
    python benchmarks/compare_revisions.py HEAD~3 --pairs 20
    python benchmarks/compare_revisions.py HEAD --quick        # 1 pair, 300 rows: a smoke test

On a shared machine the same command's median moves by a fifth between
runs minutes apart, so a change of a few percent shows only when both sides
take turns, each pair sharing the moment's load. The other revision is
checked out in a temporary git worktree, its compiled modules copied from
this checkout when their sources are the same and built otherwise (a wheel,
as pip builds it: a minute or two), and each command runs from its own tree
(so it imports that tree's ``pipeline`` and ``stages``, and so do its
workers). With ``perf`` on the PATH each run's CPU, over all its processes,
and its page faults are counted too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.data import METRICS, SIZES, WEIGHTS, Size  # noqa: E402
from benchmarks.measure import become_subreaper, reap_orphans  # noqa: E402
from benchmarks.report import header, load_average, table  # noqa: E402
from benchmarks.startup import QUICK, WORKERS, write_csv  # noqa: E402

COMPILED_SOURCES = ("setup.py", "stages/_kernels.cpp", "stages/_fastcsv.cpp")


@dataclass
class Side:
    """One source tree's runs of the command."""

    label: str
    tree: Path
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)

    def row(self, counted: bool) -> list[str]:
        cells = [
            self.label,
            f"{statistics.median(self.seconds):.3f}",
            f"{min(self.seconds):.3f}",
            f"{max(self.seconds):.3f}",
        ]
        if counted:
            cells += [
                f"{statistics.median(self.cpu):.3f}",
                f"{statistics.median(self.faults):,.0f}",
            ]
        return cells


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def checked_out(revision: str) -> Iterator[Path]:
    """``revision`` in a temporary worktree with its compiled modules in place."""
    commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix="knn_bench_revision_"))
    tree = scratch / "tree"
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        same = (
            subprocess.run(
                ["git", "diff", "--quiet", commit, "--", *COMPILED_SOURCES], cwd=ROOT
            ).returncode
            == 0
        )
        if same:
            for built in (ROOT / "stages").glob("_*.so"):
                shutil.copy2(built, tree / "stages" / built.name)
        else:
            print(f"  building {revision}'s compiled modules ...", file=sys.stderr, flush=True)
            _build_compiled(tree, scratch / "wheel")
        yield tree
    finally:
        _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)


def _build_compiled(tree: Path, into: Path) -> None:
    """Build ``tree``'s wheel as pip installs it (its own build requirements, isolated
    from this environment's setuptools) and put its compiled modules into the tree."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into), str(tree)],
        check=True,
        capture_output=True,
    )
    (wheel,) = into.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("stages/_") and name.endswith(".so"):
                (tree / name).write_bytes(archive.read(name))


def run_once(command: Sequence[str], tree: Path, env: dict[str, str], side: Side) -> None:
    """One run of ``command`` from ``tree``: its seconds, and its CPU and faults if counted."""
    counting = shutil.which("perf") is not None
    with tempfile.TemporaryFile("w+") as errors:
        wrapped = ["perf", "stat", "-x,", "-e", "task-clock,page-faults", *command]
        started = time.perf_counter()
        proc = subprocess.run(
            wrapped if counting else list(command),
            cwd=tree,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        side.seconds.append(time.perf_counter() - started)
        reap_orphans()  # its forkserver and tracker exit after it
        errors.seek(0)
        text = errors.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{side.label}: the command failed ({proc.returncode}):\n{text}")
    if counting:
        counts = {
            fields[2]: float(fields[0])
            for fields in (line.split(",") for line in text.splitlines())
            if len(fields) > 3 and fields[0].replace(".", "", 1).isdigit()
        }
        side.cpu.append(counts.get("task-clock", 0.0) / 1000)
        side.faults.append(counts.get("page-faults", 0.0))


def command_for(size: Size, data: Path) -> list[str]:
    """The command benchmarks/startup.py times against the GridSearchCV script."""
    return [
        sys.executable,
        *("-m", "pipeline", "run", str(data), "--label", "label", "--cv", "column:fold"),
        *("--k", f"1-{size.k_max}", "--metrics", ",".join(METRICS)),
        *("--weights", ",".join(WEIGHTS), "--workers", str(WORKERS), "--quiet"),
    ]


def compare(revision: str, size: Size, pairs: int, warm_up: bool) -> list[Side]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # installed modules are compiled once
    env.pop("PYTHONPATH", None)  # each command imports its own tree's modules
    with (
        tempfile.TemporaryDirectory(prefix="knn_bench_compare_") as scratch,
        checked_out(revision) as tree,
    ):
        data = Path(scratch) / f"{size.name}.csv"
        write_csv(size, data)
        command = command_for(size, data)
        sides = [Side("this checkout", ROOT), Side(revision, tree)]
        if warm_up:  # bytecode written, files in the page cache
            for side in sides:
                run_once(command, side.tree, env, Side(side.label, side.tree))
        for turn in range(pairs):
            for side in sides if turn % 2 == 0 else sides[::-1]:
                run_once(command, side.tree, env, side)
    return sides


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the revision to compare with (a commit, tag, HEAD~3)")
    parser.add_argument("--pairs", type=int, default=10, help="runs of each side, in turns (10)")
    parser.add_argument("--size", choices=list(SIZES), default="S", help="grid size (S)")
    parser.add_argument("--quick", action="store_true", help="1 pair, no warm-up, 300 rows")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs: at least 1")
    args.size = QUICK if args.quick else SIZES[args.size]
    if args.quick:
        args.pairs = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(header("Whole-process times: this checkout against another revision", ROOT))
    become_subreaper()  # so the helpers a run leaves behind can be waited for
    size = args.size
    ours, theirs = compare(args.revision, size, args.pairs, warm_up=not args.quick)
    counted = bool(ours.cpu)
    print(
        f"\n== {size.name} as whole processes: {size.rows:,} rows, {size.candidates} candidates,"
        f" --workers {WORKERS}; {args.pairs} pairs in turns; load {load_average()}"
    )
    headings = ["source", "median s", "min s", "max s"]
    headings += ["median CPU s", "median page faults"] if counted else []
    print(table(headings, [ours.row(counted), theirs.row(counted)]))
    medians = statistics.median(ours.seconds) / statistics.median(theirs.seconds)
    paired = statistics.median(a / b for a, b in zip(ours.seconds, theirs.seconds, strict=True))
    print(
        f"ratio: this checkout takes {medians:.3f}x {args.revision}'s median time"
        f" (median of the pairs' ratios {paired:.3f}x)"
    )
    if not counted:
        print("(no perf on the PATH: CPU and page faults not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
