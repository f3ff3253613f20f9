"""Benchmark the tuning against scikit-learn on one machine, in one run.

    python benchmarks/vs_sklearn.py --size S            # the contenders table
    python benchmarks/vs_sklearn.py --size S --all      # and kernel, scaling, responsiveness

Other processes may share the CPUs, so every figure that matters is a ratio
against a peer measured in the same run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.data import SIZES  # noqa: E402
from benchmarks.measure import become_subreaper  # noqa: E402
from benchmarks.report import header  # noqa: E402
from benchmarks.sections import (  # noqa: E402
    CONTENDERS,
    SHORT_REPEATS,
    Run,
    Target,
    contenders_section,
    kernel_section,
    responsiveness_section,
    scaling_section,
    targets_section,
)

SECTIONS = ("contenders", "kernel", "scaling", "responsiveness")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="S", help="data size (default S)")
    for name in SECTIONS:
        parser.add_argument(f"--{name}", action="store_true", help=f"run the {name} section")
    parser.add_argument("--all", action="store_true", help="run every section")
    parser.add_argument(
        "--k-max", type=int, help="grid k 1..K instead of the size's own (quick checks)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="every contender runs once, even a short one (quick checks)",
    )
    parser.add_argument(
        "--skip-sklearn",
        action="store_true",
        help="contenders: only ours and ours without reuse (quick checks)",
    )
    return parser.parse_args(argv)


def chosen_sections(args: argparse.Namespace) -> list[str]:
    """The sections asked for; the contenders table when none is named."""
    if args.all:
        return list(SECTIONS)
    chosen = [name for name in SECTIONS if getattr(args, name)]
    return chosen or ["contenders"]


def run_sections(run: Run, sections: list[str], skip_sklearn: bool) -> list[Target]:
    """Each section in turn; one that fails is reported and the others still run."""
    names = [n for n in CONTENDERS if not (skip_sklearn and n in ("grid", "cached", "grid-warm"))]
    runners: dict[str, Callable[[], list[Target]]] = {
        "contenders": lambda: contenders_section(run, names),
        "kernel": lambda: kernel_section(run),
        "scaling": lambda: scaling_section(run),
        "responsiveness": lambda: responsiveness_section(run),
    }
    targets: list[Target] = []
    for name in sections:
        try:
            targets += runners[name]()
        except Exception as error:
            print(f"\n== {name}: FAILED: {type(error).__name__}: {error}")
            targets.append(Target(f"{name} section", False, "failed"))
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # each table as soon as it is measured
        sys.stdout.reconfigure(line_buffering=True)
    become_subreaper()
    print(header("knn-pipeline against scikit-learn", ROOT), flush=True)
    with tempfile.TemporaryDirectory(prefix="knn_bench_data_") as scratch:
        size = SIZES[args.size] if args.k_max is None else SIZES[args.size].with_k_max(args.k_max)
        run = Run(size, Path(scratch), short_repeats=1 if args.once else SHORT_REPEATS)
        targets = run_sections(run, chosen_sections(args), args.skip_sklearn)
    targets_section(targets)
    return 1 if any(t.detail == "failed" for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
