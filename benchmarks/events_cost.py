"""Benchmark what watching a run costs: ``--events FILE`` and ``--log-to`` against neither.

    python benchmarks/events_cost.py            # wine, leave-one-out, two weightings
    python benchmarks/events_cost.py --quick    # iris, k 1..9: a smoke test

The same command is timed as a user meets it, a whole process each time,
median of ``--repeat`` runs, alternating: with no event sink, with ``--events``
to a file, and with ``--log-to`` a log consumer started here (``python -m
pipeline logs``). Leave-one-out makes every fold of every candidate an event
(about 29,000 for wine). Each run's events are counted where they land: the
file, and the consumer's output, must hold every event the run emitted.
Targets: each sink at most 1.3 times the run without.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from benchmarks.report import TIMES, header, table  # noqa: E402

TARGET = 1.3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def counts(lines: list[str]) -> tuple[int, int, int]:
    """Events, ``unit_done`` events, and the units the run planned."""
    records = [json.loads(line) for line in lines if line.strip()]
    planned = next((r["units_total"] for r in records if r["kind"] == "run_started"), -1)
    return len(records), sum(r["kind"] == "unit_done" for r in records), planned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="iris, k 1..9, one run each")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    run = [sys.executable, "-m", "pipeline", "run", "--cv", "loo", "--quiet", "--top", "1"]
    if args.quick:
        run += ["iris", "--k", "1-9"]
        args.repeat = 1
    else:
        run += ["wine", "--weights", "uniform,distance"]
    print(header("knn-pipeline: the cost of --events and --log-to", ROOT))
    times: dict[str, list[float]] = {"no sink": [], "--events FILE": [], "--log-to": []}
    delivered: dict[str, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        events, received = Path(folder) / "events.jsonl", Path(folder) / "received.jsonl"
        port = free_port()
        listen = ["--listen", f"127.0.0.1:{port}", "--out", str(received)]
        consumer = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "logs", *listen],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # the consumer listens; a sender retries until it does anyway
            for _ in range(args.repeat):
                times["no sink"].append(timed(run))
                times["--events FILE"].append(timed([*run, "--events", str(events)]))
                delivered["--events FILE"] = counts(events.read_text().splitlines())
                before = len(received.read_text().splitlines()) if received.exists() else 0
                times["--log-to"].append(timed([*run, "--log-to", f"tcp://127.0.0.1:{port}"]))
                time.sleep(1.0)  # the consumer writes what it has received
                delivered["--log-to"] = counts(received.read_text().splitlines()[before:])
        finally:
            consumer.terminate()
            consumer.wait(30)
    base = statistics.median(times["no sink"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        got = delivered.get(name)
        where = "" if got is None else f"{got[0]:,} events, unit_done {got[1]}/{got[2]}"
        rows.append([name, f"{median:.2f}", f"{median / base:.2f}{TIMES}", where])
    print(f"\n== {' '.join(run[3:])}: whole process, median of {args.repeat}")
    print(table(["sink", "seconds", "÷ no sink", "delivered"], rows))
    print("\n== targets")
    complete = True
    for name in ("--events FILE", "--log-to"):
        ratio = statistics.median(times[name]) / base
        events_total, units_done, planned = delivered[name]
        whole = units_done == planned and events_total > planned
        complete &= whole
        verdict = "met" if ratio <= TARGET else "NOT MET"
        print(f"{name} ≤ {TARGET}{TIMES} no sink: {verdict} ({ratio:.2f}{TIMES})")
        print(f"{name} holds every unit_done: {'yes' if whole else 'NO'}")
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
