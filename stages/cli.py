"""The k-NN command line: ``python -m pipeline run``, ``predict``, ``report`` and ``logs``.

:mod:`stages.entry` runs :func:`main` as a process (for ``python -m pipeline``
and the ``knn-pipeline`` script); this module turns flags into the job's
options and maps the job's errors back to flags.

Exit status: 0 done; 2 bad input or options (one line on stderr saying what,
where and how to fix); 130 interrupted; 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import functools
import importlib.util
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pipeline.cluster import QUIET_LOGGER_FAMILIES, ClusterLost
from pipeline.compute import WorkerCrashed, prestart_forkserver
from pipeline.errors import InputError, call_options_by
from pipeline.files import file_identity, is_special_file
from pipeline.interrupts import TERMINATING, interrupts
from pipeline.logs.address import parse_log_target
from pipeline.logs.client import SenderStats
from pipeline.runner import StageFailed
from pipeline.sinks import Sink, SinkStopped, WriteFailed, run_sink, stream_to_consumer, write_jsonl

from .progress import show_progress
from .terminal import plainly_not_a_terminal

if TYPE_CHECKING:
    from .results import TuningResult

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit 2, like every other input error."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line} (see {self.prog} --help)\n")


T = TypeVar("T")


def _a_value(convert: Callable[[str], T]) -> Callable[[str], T]:
    """``convert`` refusing ``--`` as a value, as Python 3.13's argparse passes it on
    (3.11 drops it; :func:`_refuse_swallowed_values` catches that)."""

    @functools.wraps(convert)
    def checked(text: str) -> T:
        if text == "--":
            raise argparse.ArgumentTypeError("'--' is not a value; give one")
        return convert(text)

    return checked


@_a_value
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


MAX_WORKERS = max(64, 8 * (os.cpu_count() or 1))


def _whole_number(text: str, below: int, bounds: str) -> int:
    """``text`` as an int in ``0 .. below - 1``, or the flag's one-line error saying ``bounds``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < below:
        raise argparse.ArgumentTypeError(f"{text!r} must be {bounds}")
    return value


@_a_value
def _non_negative(text: str) -> int:
    return _whole_number(text, 2**31, "0 or more")


@_a_value
def _workers(text: str) -> int:
    value = _positive(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is more processes than make sense here (at most {MAX_WORKERS})"
        )
    return value


@_a_value
def _seed(text: str) -> int:
    return _whole_number(text, 2**32, "between 0 and 4294967295")


@_a_value
def _output(text: str) -> Path:
    """An output file's path, as typed: a trailing slash names a directory, not a file."""
    if not text or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name (it ends with /)")
    return Path(text)


@_a_value
def _label(text: str) -> str | int:
    return int(text) if text.lstrip("-").isdigit() else text


def _columns(text: str | None, option: str) -> tuple[str | int, ...]:
    """``--drop``/``--features``: names or 0-based indices, comma-separated."""
    if text is None:
        return ()
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise InputError(f"{option}: {text!r} has an empty item; e.g. {option} id,date")
    return tuple(_label(item) for item in items)


def _delimiter(text: str | None) -> str | None:
    """``--delimiter`` as typed: ``tab`` and ``\\t`` mean a tab (hard to type in a shell)."""
    if text is None:
        return None
    return "\t" if text.lower() in ("tab", "\\t") else text


_DASK_HELP = (
    "run on a Dask cluster: tcp://HOST:PORT of a running scheduler, or local[:N] "
    "to start N worker processes here for this run (needs the dask extra)"
)


def build_parser() -> argparse.ArgumentParser:
    with interrupts.shield():  # imports are not interrupted: see pipeline.interrupts
        from .metrics import metric_help

    parser = _Parser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="tune k, metric and weighting by cross-validation")
    run.add_argument(
        "data",
        nargs="?",
        default="iris",
        help="CSV (plain or gzip; - for standard input) or .npy/.npz path, or iris, wine, "
        "breast_cancer, digits (default: iris)",
    )
    run.add_argument(
        "--label", type=_label, help="label column: header name or 0-based index (default: last)"
    )
    run.add_argument("--delimiter", help="CSV cell delimiter (default: detected among , ; tab |)")
    run.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV's first row is data, not column names (default: detected)",
    )
    run.add_argument(
        "--drop",
        metavar="COLS",
        help="CSV columns that are not features, comma-separated names or 0-based indices",
    )
    run.add_argument(
        "--features",
        metavar="COLS",
        help="only these CSV columns are features (names or 0-based indices)",
    )
    run.add_argument(
        "--categorical",
        choices=("onehot", "error"),
        default="onehot",
        help="feature columns of text: one-hot encode them, categories learned on each "
        "training fold (default), or refuse the file",
    )
    run.add_argument(
        "--skip-rows",
        type=_non_negative,
        default=0,
        metavar="N",
        help="drop the CSV's first N lines, e.g. a line of metadata above the data (default: 0)",
    )
    run.add_argument(
        "--k", default="1-39:2", help="k values: 1-39:2, 1,3,5 or a mix (default: 1-39:2)"
    )
    run.add_argument(
        "--metrics",
        default="euclidean,manhattan,chebyshev,sorensen",
        help=f"distance metrics, comma-separated ({metric_help()}) "
        "(default: euclidean,manhattan,chebyshev,sorensen)",
    )
    run.add_argument("--weights", default="uniform", help="uniform,distance (default: uniform)")
    run.add_argument(
        "--scale",
        help="feature scalings to search, fitted on each training fold: none, standard, "
        "minmax, robust, comma-separated (default: not searched, features as they are)",
    )
    run.add_argument(
        "--cv", default="kfold:5", help="kfold:N, holdout:F, loo or column:NAME (default: kfold:5)"
    )
    run.add_argument(
        "--scoring",
        default="accuracy",
        help="the score that ranks the candidates: accuracy, balanced_accuracy, f1_macro, "
        "f1_weighted, precision_macro, recall_macro (default: accuracy)",
    )
    run.add_argument("--seed", type=_seed, default=0, help="shuffling seed (default: 0)")
    run.add_argument("--workers", type=_workers, help="worker processes (default: CPU count)")
    run.add_argument("--dask", metavar="ADDRESS", help=_DASK_HELP)
    run.add_argument("--out", type=_output, help="write the results JSON here")
    run.add_argument(
        "--save-model", type=_output, metavar="FILE", help="write the best model to FILE"
    )
    run.add_argument(
        "--report",
        type=_output,
        metavar="FILE.html",
        help="write an HTML page of the tuning, figures inline (needs the report extra)",
    )
    run.add_argument(
        "--top", type=_positive, default=10, help="leaderboard rows to print (default: 10)"
    )
    run.add_argument(
        "--quiet", action="store_true", help="no progress display, only the leaderboard"
    )
    run.add_argument(
        "--missing",
        default="error",
        help="missing feature values: error, drop (their rows), mean or median "
        "(imputed from each training fold) (default: error)",
    )
    run.add_argument(
        "--precision",
        default="float64",
        help="arithmetic of the distances: float64 (exact, scikit-learn's numbers) or float32 "
        "(faster; rounded to about 7 digits, so near-ties may order differently) "
        "(default: float64)",
    )
    run.add_argument(
        "--checkpoint", type=_output, help="record each finished unit in FILE, to resume later"
    )
    run.add_argument(
        "--resume", action="store_true", help="continue the run recorded in --checkpoint FILE"
    )
    run.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="log the tuning to MLflow: a directory, file: URI or http(s):// server "
        "(default ./mlruns; write --mlflow=URI; needs the mlflow extra)",
    )
    run.add_argument(
        "--mlflow-top",
        type=_non_negative,
        default=5,
        metavar="N",
        help="MLflow child runs for the N best candidates (default: 5)",
    )
    run.add_argument("--events", type=_output, help="write every event as a JSON line to this file")
    run.add_argument(
        "--log-to", metavar="tcp://HOST:PORT", help="stream every event to a log consumer"
    )

    predict = commands.add_parser("predict", help="classify new samples with a saved model")
    predict.add_argument("model", type=Path, help="a model file written by run --save-model")
    predict.add_argument("data", type=Path, help="CSV, .npy or .npz file of samples")
    predict.add_argument(
        "--out", type=_output, help="write the predictions CSV here (default: standard output)"
    )
    predict.add_argument(
        "--proba", action="store_true", help="add a proba_<class> column per class (vote shares)"
    )
    predict.add_argument(
        "--label",
        type=_label,
        help="column of true classes (header name or 0-based index): print the accuracy",
    )
    predict.add_argument("--workers", type=_workers, help="worker processes (default: CPU count)")
    predict.add_argument("--dask", metavar="ADDRESS", help=_DASK_HELP)
    predict.add_argument("--quiet", action="store_true", help="no progress display")
    predict.add_argument("--events", type=_output, help="write every event as a JSON line here")
    predict.add_argument(
        "--log-to", metavar="tcp://HOST:PORT", help="stream every event to a log consumer"
    )

    report = commands.add_parser("report", help="draw a results JSON as one HTML page")
    report.add_argument("results", type=Path, help="a results JSON written by run --out")
    report.add_argument(
        "--out",
        type=_output,
        metavar="FILE.html",
        help="the page to write (default: RESULTS with the suffix .html)",
    )

    logs = commands.add_parser(
        "logs", help="receive streamed events from runs and append them to a file"
    )
    logs.add_argument(
        "--listen", default="127.0.0.1:18842", help="HOST:PORT (default: 127.0.0.1:18842)"
    )
    logs.add_argument("--out", default="-", help="file to append JSON lines to, or - for stdout")
    logs.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics of what arrives at http://HOST:PORT/metrics "
        "(PORT alone: 127.0.0.1; needs the metrics extra)",
    )
    return parser


def _check_out_path(path: Path | None, option: str = "--out") -> None:
    """Refuse an output path that cannot be written before any work is done."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; give a file name")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{option} {path}: cannot write in {parent}; choose another place")


def _refuse_one_file_twice(inputs: dict[str, Any], outputs: dict[str, Path | None]) -> None:
    """An output that is an input, or another output, would destroy it: refuse it.

    ``inputs`` and ``outputs`` map each option (as typed) to its path (None:
    not given; an input that names no file, as ``iris``, is skipped).
    """
    seen: dict[Any, str] = {}
    for option, path in inputs.items():
        if path is not None and os.path.isfile(path):
            identity = file_identity(path)
            if identity is not None:
                seen.setdefault(identity, option)
    for option, path in outputs.items():
        if path is None:
            continue
        identity = file_identity(path)
        if identity is None:
            continue  # a device or FIFO: written through, nothing to destroy
        if identity in seen:
            raise InputError(
                f"{option} {path}: is the same file as {seen[identity]}; "
                f"writing it would destroy that, so give {option} another file"
            )
        seen[identity] = option


SINK_EVENTS = 1 << 18
"""Events a command's sink may fall behind by before progress events are dropped: the
sinks keep up (one writer thread for files, a buffered sender for TCP), but the ranking
announces a fold's candidates in one burst, thousands under leave-one-out."""


def _sinks(args: argparse.Namespace) -> list[tuple[str, Sink]]:
    """The event sinks the options ask for (checked before the run starts)."""
    sinks: list[tuple[str, Sink]] = []
    if not args.quiet:
        sinks.append(("progress", lambda events: show_progress(events, sys.stderr)))
    if args.events is not None:
        sinks.append(("--events", write_jsonl(args.events)))
    if args.log_to is not None:
        try:
            host, port = parse_log_target(args.log_to)
        except ValueError as error:
            raise InputError(str(error)) from None
        sinks.append(("--log-to", stream_to_consumer(host, port)))
    return sinks


def _report_delivery(stats: object, args: argparse.Namespace) -> int:
    """Say what a sink could not deliver; EXIT_FAILED when events were lost for good."""
    if isinstance(stats, SenderStats) and (stats.dropped or stats.undelivered):
        print(
            f"warning: --log-to delivered {stats.sent} events; {stats.dropped} dropped "
            f"(buffer full) and {stats.undelivered} undelivered (consumer unreachable)",
            file=sys.stderr,
        )
    if isinstance(stats, SinkStopped) and stats.name == "--events":
        error = stats.error
        written = f"after {error.written} events " if isinstance(error, WriteFailed) else ""
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        print(
            f"error: --events {args.events}: writing stopped {written}({reason}); "
            "the later events were lost (the run's results are complete)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


SINK_DRAIN_SECONDS = 2.0
"""How long an interrupted command waits for its event sinks to finish."""


async def _watched(
    job: Any, sinks: list[tuple[str, Sink]], args: argparse.Namespace
) -> tuple[Any, int | None, int]:
    """Run ``job`` (a Tuning or a Prediction) with the sinks watching; Ctrl-C, SIGTERM
    and SIGHUP cancel it (a signal ignored when the command started, as under
    ``nohup``, stays ignored).

    Returns the job's result, or None and the exit status when it was
    interrupted; and EXIT_FAILED if a sink lost events (else EXIT_OK).
    """
    watching = [
        asyncio.create_task(run_sink(name, sink, job.subscribe(SINK_EVENTS)))
        for name, sink in sinks
    ]
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    previous = {
        signum: handler
        for signum in TERMINATING
        if (handler := signal.getsignal(signum)) is not signal.SIG_IGN
    }
    if main_task is not None:
        for signum in previous:
            loop.add_signal_handler(signum, main_task.cancel)

    def restore_handlers() -> None:
        # remove_signal_handler resets a signal to its default (death): block them until
        # the previous handlers are back.
        signal.pthread_sigmask(signal.SIG_BLOCK, set(previous))
        try:
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, set(previous))
        previous.clear()

    try:
        result = await job.run()
    except asyncio.CancelledError:
        restore_handlers()  # a second interrupt now ends the command at once
        done: set[asyncio.Task[Any]] = set()
        if watching:
            done, pending = await asyncio.wait(watching, timeout=SINK_DRAIN_SECONDS)
            for task in pending:  # a sink stuck on its output (a FIFO nobody reads)
                task.cancel()
        for stats in [t.result() for t in done if not t.cancelled()]:
            _report_delivery(stats, args)
        print("interrupted", file=sys.stderr)
        return None, EXIT_INTERRUPTED, EXIT_OK
    finally:
        restore_handlers()
        for task in watching:  # on failure: the bus is closed, so sinks end on their own
            if task.done():
                continue
            await asyncio.wait([task])
    lost = EXIT_OK
    for stats in [t.result() for t in watching]:
        lost |= _report_delivery(stats, args)
    return result, None, lost


def _print_leaderboard(result: TuningResult, top: int) -> None:
    """A rich table on a terminal; aligned plain text to a file or a pipe (rich unloaded);
    nothing when standard output is closed (the files asked for still hold the results)."""
    if sys.stdout is None:
        return
    if plainly_not_a_terminal(sys.stdout):
        sys.stdout.write(result.plain_table(top))
        sys.stdout.flush()
    else:
        result.print_table(top)


async def _run(args: argparse.Namespace, sinks: list[tuple[str, Sink]]) -> int:
    with interrupts.shield():
        from .tuning import Tuning

    tuning = Tuning(
        args.data,
        k=args.k,
        metrics=args.metrics,
        weights=args.weights,
        scale=args.scale,
        cv=args.cv,
        scoring=args.scoring,
        seed=args.seed,
        label=args.label,
        workers=args.workers,
        dask=args.dask,
        missing=args.missing,
        precision=args.precision,
        checkpoint=args.checkpoint,
        resume=args.resume,
        delimiter=_delimiter(args.delimiter),
        header=False if args.no_header else None,
        skip_rows=args.skip_rows,
        drop=_columns(args.drop, "--drop"),
        features=_columns(args.features, "--features"),
        categorical=args.categorical,
    )
    result, interrupted, lost = await _watched(tuning, sinks, args)
    if interrupted is not None:
        try:
            partial = tuning.result()
        except RuntimeError:
            return interrupted
        if partial.candidates:
            _print_leaderboard(partial, args.top)
        return interrupted
    _print_leaderboard(result, args.top)  # first: a failed write below must not cost them
    written = lost
    artifacts: list[Path] = []  # the files written, for MLflow
    if args.out is not None:
        failed = _write_or_say("--out", args.out, lambda: result.write_json(args.out))
        written |= failed
        artifacts += [] if failed else [args.out]
    if args.save_model is not None:
        path = args.save_model
        failed = _write_or_say("--save-model", path, lambda: result.model().save(path))
        written |= failed
        artifacts += [] if failed else [path]
    if args.report is not None:
        page, command = args.report, shlex.join(["python", "-m", "pipeline", *args.argv])
        with interrupts.shield():
            from .report import write_report
        results = result.to_dict()
        failed = _write_or_say(
            "--report", page, lambda: write_report(results, page, command=command)
        )
        written |= failed
        artifacts += [] if failed else [page]
    if args.mlflow is not None:
        with interrupts.shield():
            from .mlflow_log import log_tuning
        options = {**tuning.params(), "scoring": args.scoring}
        # a failure is one warning, and the exit status stays what the run earned
        await asyncio.to_thread(
            log_tuning,
            result,
            options=options,
            uri=args.mlflow or None,
            top=args.mlflow_top,
            artifacts=[a for a in artifacts if not is_special_file(a)],
        )
    return written


_FLAGS = {"header": "--no-header", "data": "DATA", "resume": "--resume"}
"""Flags not spelled ``--`` + the parameter with dashes for underscores."""


def flag_of(parameter: str) -> str:
    """The command line's flag for a library parameter: ``skip_rows`` is ``--skip-rows``."""
    return _FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def _in_flags(error: InputError) -> str:
    """The error's message, with the options it names called by their flags."""
    return error.named(flag_of)


def _refuse_data_as_uri(uri: str) -> None:
    """``run --mlflow wine.csv`` takes the data for the URI (``--mlflow``'s value is
    optional) and would tune Iris: refuse a URI that names data."""
    data_like = uri in ("wine", "breast_cancer", "digits") or (
        Path(uri).suffix.lower() in (".csv", ".gz", ".npy", ".npz", ".tsv", ".txt")
        and Path(uri).is_file()
    )
    if data_like:
        raise InputError(
            f"--mlflow {uri}: looks like the data, taken as the MLflow URI; "
            f"write --mlflow=URI, or put DATA before --mlflow"
        )


def _require_matplotlib(option: str) -> None:
    """Refuse a report before the work when its figures cannot be drawn."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError(f"{option}: needs matplotlib; pip install 'knn-pipeline[report]'")


def _report_command(args: argparse.Namespace) -> int:
    source: Path = args.results
    out: Path = args.out if args.out is not None else source.with_suffix(".html")
    _refuse_one_file_twice({"RESULTS": source}, {"--out": out})
    _check_out_path(out)
    _require_matplotlib("report")
    results = _read_results(source)
    with interrupts.shield():
        from .report import write_report

    def write() -> None:
        try:
            write_report(results, out)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InputError(
                f"{source}: not a results JSON ({type(error).__name__}: {error}); "
                "give one written by run --out"
            ) from None

    return _write_or_say("--out", out, write)


def _read_results(path: Path) -> dict[str, Any]:
    """A results JSON object, or one line saying what is wrong with the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            f"{path}: no such file; give a results JSON written by run --out"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InputError(f"{path}: cannot be read ({reason})") from None
    try:
        results: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}:{error.lineno}:{error.colno}: not JSON ({error.msg}); "
            "give a results JSON written by run --out"
        ) from None
    candidates = results.get("candidates") if isinstance(results, dict) else None
    if not isinstance(candidates, list) or not all(
        isinstance(c, dict) and isinstance(c.get("params"), dict) for c in candidates
    ):
        raise InputError(
            f"{path}: not a results JSON (no candidates); give one written by run --out"
        )
    return dict(results)


def _write_or_say(option: str, path: Path, write: Callable[[], None]) -> int:
    """Write an output file; if that fails (a full disk), say so in one line: EXIT_FAILED."""
    try:
        write()
    except OSError as error:
        reason = error.strerror or str(error)
        print(f"error: {option} {path}: could not be written ({reason})", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _predict(args: argparse.Namespace, sinks: list[tuple[str, Sink]]) -> int:
    with interrupts.shield():
        from .model import KNNModel
        from .predicting import Prediction

    model = await asyncio.to_thread(KNNModel.load, args.model)
    prediction = Prediction(
        model,
        args.data,
        out=args.out if args.out is not None else sys.stdout,
        proba=args.proba,
        label=args.label,
        workers=args.workers,
        dask=args.dask,
    )
    summary, interrupted, lost = await _watched(prediction, sinks, args)
    if interrupted is not None:
        return interrupted
    where = f" to {args.out}" if args.out is not None else ""
    print(
        f"classified {summary.rows} rows{where} in {summary.seconds:.2f} s "
        f"on {summary.workers} workers",
        file=sys.stderr,
    )
    if summary.unknown_labels:
        shown = ", ".join(map(repr, summary.unknown_labels))
        print(
            f"warning: --label {args.label} holds labels that are no class of the model "
            f"({shown}); its classes are {', '.join(model.class_names[:10])}",
            file=sys.stderr,
        )
    if summary.accuracy is not None:
        print(
            f"accuracy {summary.accuracy:.4f} on {summary.labelled} rows (--label {args.label})",
            file=sys.stderr,
        )
    return lost


def _run_command(args: argparse.Namespace) -> int:
    _refuse_one_file_twice(
        {"DATA": args.data, **({"--checkpoint": args.checkpoint} if args.resume else {})},
        {
            "--out": args.out,
            "--save-model": args.save_model,
            "--report": args.report,
            "--events": args.events,
            **({} if args.resume else {"--checkpoint": args.checkpoint}),
        },
    )
    _check_out_path(args.out)
    _check_out_path(args.save_model, "--save-model")
    _check_out_path(args.report, "--report")
    if args.report is not None:
        _require_matplotlib("--report")
    if args.mlflow is not None and importlib.util.find_spec("mlflow") is None:
        raise InputError("--mlflow: needs MLflow; pip install 'knn-pipeline[mlflow]'")
    if args.mlflow and args.data == "iris" and "iris" not in args.argv:
        _refuse_data_as_uri(args.mlflow)
    _check_out_path(args.events, "--events")
    _check_out_path(args.checkpoint, "--checkpoint")
    _prepare_workers(args)
    return _run_async(_run(args, _sinks(args)))


def _prepare_workers(args: argparse.Namespace) -> None:
    """Start the local workers' forkserver now, or quiet Dask for a cluster run.

    The forkserver imports NumPy and the kernels (a third of a second) while
    this process imports scikit-learn and reads the data.
    """
    if args.dask is not None:
        _quiet_dask()
        return
    with interrupts.shield():
        from .neighbours import WORKER_PRELOAD
    prestart_forkserver(WORKER_PRELOAD)


def _predict_command(args: argparse.Namespace) -> int:
    if args.out is None and sys.stdout is None:
        raise InputError(
            "predict: standard output is closed, and the predictions go there without --out; "
            "give --out FILE"
        )
    _refuse_one_file_twice(
        {"MODEL": args.model, "DATA": args.data}, {"--out": args.out, "--events": args.events}
    )
    _check_out_path(args.out)
    _check_out_path(args.events, "--events")
    _prepare_workers(args)
    return _run_async(_predict(args, _sinks(args)))


def _quiet_dask() -> None:
    """Keep Dask's own log lines (reconnecting, restarting workers) off the terminal:
    what matters reaches the user as this tool's warnings and errors, one line each."""
    with contextlib.suppress(ImportError), interrupts.shield():  # --dask then says what to install
        import distributed  # noqa: F401  (configures its loggers on import)
    families = QUIET_LOGGER_FAMILIES
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in families]
    for name in {*families, *names}:  # Dask's config gives some children handlers of their own
        logger = logging.getLogger(name)
        logger.handlers = [logging.NullHandler()]
        logger.propagate = False


def _logs_command(args: argparse.Namespace) -> int:
    from pipeline.logs.address import parse_listen, parse_metrics
    from pipeline.logs.server import LogServerOptions, run_log_server

    from . import events  # noqa: F401 (registers the tuning's kinds: the metrics label them)

    try:
        host, port = parse_listen(args.listen)
        metrics = None if args.metrics is None else parse_metrics(args.metrics)
    except ValueError as error:
        raise InputError(str(error)) from None
    if args.out != "-":
        _check_out_path(Path(args.out))

    def ready(address: tuple[str, int]) -> None:
        print(f"listening on {address[0]}:{address[1]}, appending to {args.out}", file=sys.stderr)

    def metrics_ready(address: tuple[str, int]) -> None:
        print(f"serving metrics on http://{address[0]}:{address[1]}/metrics", file=sys.stderr)

    try:
        return run_log_server(
            LogServerOptions(
                host=host,
                port=port,
                out=args.out,
                ready=ready,
                metrics=metrics,
                metrics_ready=metrics_ready,
            )
        )
    except OSError as error:
        raise InputError(
            f"--listen {args.listen}: cannot listen ({error.strerror or error}); "
            "choose a free port or stop the program using it"
        ) from None


class _StderrHandler(logging.Handler):
    """Warnings as ``warning: message`` lines on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def _show_warnings() -> None:
    for name in ("pipeline", "stages"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            logger.addHandler(_StderrHandler(logging.WARNING))


def _refuse_swallowed_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--cv=--`` and the like: refused the same way whichever Python parses it.

    Python 3.11's argparse drops the ``--`` and leaves an empty list; later
    versions keep ``--`` as the value.
    """
    for name, value in vars(args).items():
        if isinstance(value, list) or value == "--":
            option = "--" + name.replace("_", "-")
            parser.error(f"{option}: '--' is not a value; give one, e.g. {option} VALUE")


def _run_async(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)``, its shutdown shielded from interruptions.

    Ctrl-C during the run itself cancels it (see :func:`_watched`), as
    ``asyncio.run`` would; at any other moment it raises KeyboardInterrupt.
    """
    runner = asyncio.Runner()
    try:
        return runner.run(main)
    finally:
        with interrupts.shield():
            runner.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    handlers = interrupts.install()
    naming = call_options_by(flag_of)  # warnings name options by their flags
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP outside the run itself
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        interrupts.restore(handlers)
        naming.var.reset(naming)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _refuse_swallowed_values(parser, args)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, to reproduce it
    _show_warnings()
    try:
        if args.command == "run":
            return _run_command(args)
        if args.command == "predict":
            return _predict_command(args)
        if args.command == "report":
            return _report_command(args)
        return _logs_command(args)
    except InputError as error:
        print(f"error: {_in_flags(error)}", file=sys.stderr)
        return EXIT_USAGE
    except StageFailed as failure:
        if isinstance(failure.error, InputError):
            print(f"error: {_in_flags(failure.error)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"error: {failure}", file=sys.stderr)
        return EXIT_FAILED
    except (ClusterLost, WorkerCrashed) as error:  # the pool, before or after the stages ran
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (MemoryError, RuntimeError, ImportError, OSError) as error:
        if not _out_of_memory(error):
            raise
        print(
            f"error: out of memory ({str(error) or type(error).__name__}); lower --workers, the "
            "number of --k values or the data's size, or raise the memory limit (ulimit -v)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is memory running out: a failed allocation, a thread that cannot
    start, or a compiled library (NumPy's, SciPy's BLAS) the loader cannot map."""
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, RuntimeError):
        return "can't start new thread" in str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return True
    refused = ("Operation not permitted", "Permission denied")  # noexec, SELinux: not memory
    text = str(error)
    return (
        isinstance(error, ImportError)
        and "failed to map segment" in text
        and not any(reason in text for reason in refused)
    )


if __name__ == "__main__":
    sys.exit(main())
