"""Log consumer: collects newline-delimited JSON records sent by any number of producers.

Every line that holds a JSON object is appended to the output as one compact JSON line,
re-serialised with ``json.dumps(obj, separators=(",", ":"))``. Re-serialising rather than
copying the received bytes means the output only ever contains what this process parsed
itself: one object per line, ASCII only, whatever whitespace or encoding tricks arrived.

Input is never trusted. Lines that are not UTF-8 JSON objects are counted as ``rejected``;
lines longer than ``max_line_bytes`` are skipped chunk by chunk, never held in memory, and
counted as ``oversized``. Either way the connection stays open. Blank lines are ignored.
A final line without a newline at EOF counts like any other line.

Output lines are strict JSON: a line holding ``NaN``, ``Infinity`` or a number beyond the
range of a double is rejected too.

Connections beyond ``max_connections`` are accepted and closed at once (counted as
``refused``) so that a flood of producers cannot exhaust file descriptors or memory; a
:class:`~pipeline.logs.client.TcpLineSender` simply retries later. Idle connections cannot
lock producers out: at the limit, one idle for a second or more makes room (the idlest
of the address holding the most, counted as ``evicted``), and a connection that has not
sent a complete line within ``first_line_timeout`` is closed. Unfinished lines
held across all connections are capped at ``max_buffered_bytes``; beyond it the
connection holding the most is closed (``evicted``).

Nothing written blocks the event loop: records go to the output, and reports to their
stream, from a thread of their own (a reader that stops reading a pipe stalls only that
thread). Records wait in a bounded buffer, and while it is full the connections are not
read, so a slow output slows the producers rather than growing memory; report lines
beyond a bound are dropped. Only records actually written are counted as ``written``,
and a failed write (a full disk, a closed stdout) is reported and ends the server with
a non-zero status.

On stop the server stops listening, half-closes every connection (a polite producer then
closes its side) and keeps reading each one until EOF or until it has been quiet for a
moment, so everything producers sent before the stop is written.

With ``metrics`` the server also counts what it accepts, rejects and holds open as
Prometheus metrics (see :mod:`pipeline.logs.metrics`) and serves them over HTTP until it
stops; ``prometheus_client`` is imported only then.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TextIO

from ..errors import InputError
from .address import DEFAULT_HOST, DEFAULT_PORT, format_address

if TYPE_CHECKING:
    from .metrics import LogMetrics, MetricsServer

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "LineSplitter",
    "LogServerOptions",
    "LogServerStats",
    "encode_record",
    "run_log_server",
    "serve_logs",
]

DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_BUFFERED_BYTES = 64 << 20
"""Unfinished lines held across all connections, at most."""
DEFAULT_FIRST_LINE_TIMEOUT = 10.0
"""Seconds a new connection has to send its first complete line."""
_SINK_BUFFER_BYTES = 8 << 20
"""Records waiting for the output, at most; beyond it connections wait."""
_IDLE_ENOUGH = 1.0
"""Seconds without a complete line after which a connection may be closed to make room."""
_REPORT_LINES = 10_000
"""Report lines waiting for their stream, at most; beyond it the oldest are dropped."""

_CHUNK = 64 * 1024
_QUIET_GRACE = 0.2


@dataclass(frozen=True, kw_only=True)
class LogServerOptions:
    """Everything a consumer is told, whether run in an event loop or as a command.

    ``out`` is a file opened for appending, or ``"-"`` for stdout. ``ready`` receives
    the bound address once listening, so port 0 can be used. Summaries go to ``report``
    (stderr when None, looked up when the server starts so redirection is honoured). On
    stop, connections get up to ``drain_timeout`` seconds to deliver what they already
    sent.

    ``metrics`` is the ``(host, port)`` to serve Prometheus metrics on (port 0: any free
    one, given to ``metrics_ready`` once bound), from the start until the server stops.
    """

    out: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    idle_timeout: float = 300.0
    max_connections: int = 1024
    first_line_timeout: float = DEFAULT_FIRST_LINE_TIMEOUT
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    drain_timeout: float = 2.0
    ready: Callable[[tuple[str, int]], None] | None = None
    report: TextIO | None = None
    metrics: tuple[str, int] | None = None
    metrics_ready: Callable[[tuple[str, int]], None] | None = None

    def __post_init__(self) -> None:
        if self.max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")


@dataclass
class LogServerStats:
    """Totals over the lifetime of one server."""

    connections: int = 0
    accepted: int = 0
    rejected: int = 0
    oversized: int = 0
    timed_out: int = 0
    refused: int = 0
    evicted: int = 0
    written: int = 0
    write_error: str | None = None


class LineSplitter:
    """Splits a byte stream into lines, dropping over-long lines without ever holding them.

    :meth:`feed` and :meth:`finish` return the complete lines (without the newline), with
    ``None`` standing for a line longer than ``max_line_bytes``. At most ``max_line_bytes``
    of an unfinished line are kept between calls.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self._limit = max_line_bytes
        self._partial = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for the current unfinished line."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[bytes | None]:
        lines: list[bytes | None] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            lines.append(self._complete(data[start:end]))
            start = end + 1
        self._keep(data[start:])
        return lines

    def finish(self) -> list[bytes | None]:
        """Return the unterminated last line, if any, as seen at EOF."""
        if self._discarding:
            self._discarding = False
            return [None]
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            return [line]
        return []

    def _complete(self, piece: bytes) -> bytes | None:
        if self._discarding:
            self._discarding = False
            return None
        if not self._partial:
            return piece if len(piece) <= self._limit else None
        if len(self._partial) + len(piece) > self._limit:
            self._partial.clear()
            return None
        line = bytes(self._partial) + piece
        self._partial.clear()
        return line

    def _keep(self, rest: bytes) -> None:
        if self._discarding or not rest:
            return
        if len(self._partial) + len(rest) > self._limit:
            self._partial.clear()
            self._discarding = True
        else:
            self._partial += rest


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: a double cannot hold it
        raise ValueError(f"{text} is out of range")
    return value


def encode_record(line: bytes) -> bytes | None:
    """Return ``line`` re-serialised as one compact JSON line if it holds a JSON object
    (strict JSON: no ``NaN``, ``Infinity`` or numbers beyond a double's range)."""
    read = _read_record(line)
    return None if read is None else read[1]


def _read_record(line: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The object ``line`` holds and its output line (parsed once, for metrics too)."""
    try:
        obj = json.loads(line.decode("utf-8"), parse_constant=_not_json, parse_float=_finite)
        if not isinstance(obj, dict):
            return None
        out = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"
    except (ValueError, RecursionError):
        return None
    return obj, out


class _Writer:
    """Writes from a thread of its own, so a stalled reader never blocks the event loop.

    Records are never dropped: :meth:`put` waits while ``limit`` bytes are pending.
    Report lines (``lossy``) are: beyond ``limit`` lines pending, the oldest go.
    """

    def __init__(
        self,
        write: Callable[[bytes], object],
        flush: Callable[[], object],
        *,
        limit: int,
        lossy: bool,
    ) -> None:
        self._write = write
        self._flush = flush
        self._limit = limit
        self._lossy = lossy
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._room: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.written = 0  # lines written
        self.dropped = 0
        self.error: OSError | ValueError | None = None
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _size(self, item: bytes) -> int:
        return 1 if self._lossy else len(item)

    def put_nowait(self, item: bytes) -> None:
        with self._lock:
            if self.error is not None:
                return
            if self._lossy and self._pending_size >= self._limit:
                self._pending_size -= self._size(self._pending.popleft())
                self.dropped += 1
            self._pending.append(item)
            self._pending_size += self._size(item)
        self._wake.set()

    async def put(self, item: bytes) -> None:
        """Queue ``item``; wait first while the buffer is full (the output is slow)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                full = self._pending_size >= self._limit and self.error is None
                if full:
                    if self._room is None:  # one event for every put waiting now
                        self._loop, self._room = loop, asyncio.Event()
                    room = self._room
            if not full:
                break
            await room.wait()
        self.put_nowait(item)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                batch = list(self._pending)
                self._pending.clear()
                self._pending_size = 0
                closing = self._closing
                room, loop, self._room = self._room, self._loop, None
            if room is not None and loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(room.set)
            if batch and self.error is None:
                try:
                    self._write(b"".join(batch))
                    self._flush()
                    self.written += sum(item.count(b"\n") for item in batch)
                except (OSError, ValueError) as error:
                    self.error = error
            if closing:
                return

    @property
    def alive(self) -> bool:
        """Still writing (after :meth:`close`: the output did not take everything in time)."""
        return self._thread.is_alive()

    def close(self, timeout: float) -> None:
        """Write what is pending (for up to ``timeout`` seconds), then stop the thread."""
        with self._lock:
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)


class _Connection:
    """Per-connection counters, plus what shutdown needs to hurry the connection along."""

    def __init__(self, peer: str, host: str, writer: asyncio.StreamWriter, now: float) -> None:
        self.peer = peer
        self.host = host
        self.writer = writer
        self.accepted = 0
        self.rejected = 0
        self.oversized = 0
        self.timed_out = False
        self.evicted = False
        self.lines = 0  # complete lines seen (any kind)
        self.connected_at = now
        self.last_active = now  # when the last complete line arrived
        self.splitter: LineSplitter | None = None
        self.deadline: asyncio.Timeout | None = None

    def evict(self) -> None:
        self.evicted = True
        self.writer.transport.abort()


class _LogServer:
    """Connection bookkeeping shared by all handlers; the sink is written only here."""

    def __init__(
        self,
        sink: _Writer,
        report: _Writer,
        options: LogServerOptions,
        metrics: LogMetrics | None = None,
    ) -> None:
        self.stats = LogServerStats()
        self._metrics = metrics
        self._sink = sink
        self._report = report
        self._max_line_bytes = options.max_line_bytes
        self._idle_timeout = options.idle_timeout
        self._first_line_timeout = min(options.first_line_timeout, options.idle_timeout)
        self._max_connections = options.max_connections
        self._max_buffered = options.max_buffered_bytes
        self._active: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Registers the connection synchronously so that shutdown never misses one."""
        now = asyncio.get_running_loop().time()
        peer, host = _peer_name(writer)
        if not self._make_room(now):
            self.stats.refused += 1
            writer.transport.abort()
            return
        self.stats.connections += 1
        conn = _Connection(peer, host, writer, now)
        task = asyncio.get_running_loop().create_task(self._serve(reader, conn))
        self._active[task] = conn
        task.add_done_callback(self._forget)  # runs even for a task cancelled unstarted
        if self._metrics is not None:
            self._metrics.connection_opened()

    def _make_room(self, now: float) -> bool:
        """At the limit, close the connection idle longest (idle a second or more)."""
        open_ = [c for c in self._active.values() if not c.evicted]
        if len(open_) < self._max_connections:
            return True
        idle = [c for c in open_ if now - c.last_active >= _IDLE_ENOUGH]
        if not idle:
            return False
        # The idlest of the address holding the most connections: a flood from one place
        # makes room first, whatever the other producers do.
        by_host = collections.Counter(c.host for c in idle)
        busiest = max(by_host, key=lambda host: by_host[host])
        min((c for c in idle if c.host == busiest), key=lambda c: c.last_active).evict()
        return True

    def _cap_buffers(self) -> None:
        """Keep the unfinished lines of all connections under the cap: evict the largest."""
        held = [(c.splitter.buffered, c) for c in self._active.values() if c.splitter]
        while held and sum(size for size, _ in held) > self._max_buffered:
            held.sort(key=lambda pair: pair[0])
            _, largest = held.pop()
            largest.evict()

    async def shutdown(self, drain_timeout: float) -> None:
        """Lets every connection finish what it already sent, then closes the rest."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        hurried: set[_Connection] = set()
        while self._active:
            for conn in self._active.values():
                if conn not in hurried:
                    hurried.add(conn)
                    self._hurry(conn, loop.time() + _QUIET_GRACE)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(list(self._active), timeout=remaining)
        pending = list(self._active)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    @staticmethod
    def _hurry(conn: _Connection, when: float) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            if conn.writer.can_write_eof():
                conn.writer.write_eof()
        timeout = conn.deadline
        if timeout is not None and not timeout.expired():
            current = timeout.when()
            if current is None or current > when:
                timeout.reschedule(when)

    async def _serve(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        try:
            await self._receive(reader, conn)
        except ConnectionError:
            pass
        finally:
            conn.writer.transport.abort()
            self._account(conn)

    async def _receive(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        splitter = conn.splitter = LineSplitter(self._max_line_bytes)
        loop = asyncio.get_running_loop()
        while True:
            if self._stopping:
                wait = _QUIET_GRACE
            elif conn.lines == 0:  # a connection must show it is a producer, soon
                wait = max(0.0, conn.connected_at + self._first_line_timeout - loop.time())
            else:
                wait = self._idle_timeout
            deadline = asyncio.timeout(wait)
            conn.deadline = deadline
            try:
                async with deadline:
                    data = await reader.read(_CHUNK)
            except TimeoutError:
                if deadline.expired():
                    conn.timed_out = not self._stopping
                return
            finally:
                conn.deadline = None
            if not data:
                await self._write(conn, splitter.finish())
                return
            lines = splitter.feed(data)
            if lines:  # complete lines only: a byte now and then is no sign of a producer
                conn.last_active = loop.time()
            await self._write(conn, lines)
            self._cap_buffers()

    async def _write(self, conn: _Connection, lines: list[bytes | None]) -> None:
        out: list[bytes] = []
        metrics = self._metrics
        for line in lines:
            conn.lines += 1
            if line is None:
                conn.oversized += 1
                if metrics is not None:
                    metrics.rejected("oversized")
            elif not line.strip():
                continue
            elif (read := _read_record(line)) is None:
                conn.rejected += 1
                if metrics is not None:
                    metrics.rejected("bad")
            else:
                out.append(read[1])
                conn.accepted += 1
                if metrics is not None:
                    metrics.accepted(read[0])
        if out:
            await self._sink.put(b"".join(out))  # waits while the output is behind

    def _account(self, conn: _Connection) -> None:
        self.stats.accepted += conn.accepted
        self.stats.rejected += conn.rejected
        self.stats.oversized += conn.oversized
        self.stats.timed_out += int(conn.timed_out)
        self.stats.evicted += int(conn.evicted)
        note = " (idle timeout)" if conn.timed_out else " (evicted)" if conn.evicted else ""
        self._say(
            f"logs: {conn.peer} disconnected: accepted={conn.accepted} "
            f"rejected={conn.rejected} oversized={conn.oversized}{note}"
        )

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        if self._metrics is not None:
            self._metrics.connection_closed()
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._say(f"logs: connection handler failed: {exc!r}")

    def say_total(self) -> None:
        s = self.stats
        failed = f" write_error={s.write_error!r}" if s.write_error else ""
        self._say(
            f"logs: total: connections={s.connections} accepted={s.accepted} "
            f"written={s.written} rejected={s.rejected} oversized={s.oversized} "
            f"timed_out={s.timed_out} refused={s.refused} evicted={s.evicted}{failed}"
        )

    def say(self, message: str) -> None:
        self._say(message)

    def _say(self, message: str) -> None:
        self._report.put_nowait(message.encode("utf-8", "replace") + b"\n")


def _peer_name(writer: asyncio.StreamWriter) -> tuple[str, str]:
    """``host:port`` of the peer, for reports, and its host, for the per-address limit."""
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return format_address(host, int(peer[1])), host
    return str(peer), str(peer)


async def serve_logs(
    options: LogServerOptions, *, stop: asyncio.Event | None = None
) -> LogServerStats:
    """Serve producers until ``stop`` is set (or the task is cancelled); return the totals.

    :class:`InputError` when ``--out`` cannot be opened, or the metrics cannot be served
    (their address cannot be bound, or ``prometheus_client`` is missing).
    """
    stop = stop if stop is not None else asyncio.Event()
    report = options.report if options.report is not None else sys.stderr
    out, drain_timeout = options.out, options.drain_timeout

    async with contextlib.AsyncExitStack() as stack:
        sink = _open_sink(out, stack)
        records = _Writer(sink.write, sink.flush, limit=_SINK_BUFFER_BYTES, lossy=False)
        reports = _Writer(
            lambda data: report.write(data.decode("utf-8", "replace")),
            report.flush,
            limit=_REPORT_LINES,
            lossy=True,
        )
        try:
            counting: LogMetrics | None = None
            exporter: MetricsServer | None = None
            if options.metrics is not None:
                counting, exporter = await _serve_metrics(*options.metrics)
                stack.push_async_callback(asyncio.to_thread, exporter.close)  # closed last
            state = _LogServer(records, reports, options, counting)
            server = await asyncio.start_server(state.on_connect, options.host, options.port)
        except BaseException:
            records.close(drain_timeout)
            reports.close(0)
            raise
        try:
            if options.ready is not None:
                name = server.sockets[0].getsockname()
                options.ready((str(name[0]), int(name[1])))
            if exporter is not None and options.metrics_ready is not None:
                options.metrics_ready(exporter.address)
            await stop.wait()
        finally:
            server.close()
            try:
                await state.shutdown(drain_timeout)
                await server.wait_closed()
            finally:
                await asyncio.to_thread(records.close, drain_timeout)
                state.stats.written = records.written
                if records.error is None and records.alive:
                    records.error = TimeoutError("the output took no more records in time")
                if records.error is not None:
                    state.stats.write_error = _describe(records.error)
                    state.say(
                        f"logs: error: --out {out}: writing failed ({_describe(records.error)})"
                    )
                state.say_total()
                await asyncio.to_thread(reports.close, 1.0)
    return state.stats


async def _serve_metrics(host: str, port: int) -> tuple[LogMetrics, MetricsServer]:
    """Fresh metrics, served on ``host:port``; ``prometheus_client`` is imported only here."""
    try:
        from .metrics import LogMetrics, serve_metrics
    except ImportError as error:
        raise InputError(
            f"--metrics: needs prometheus_client ({error}); "
            "install it with pip install 'knn-pipeline[metrics]'"
        ) from None
    counting = LogMetrics()
    return counting, await serve_metrics(counting, host, port)


def _open_sink(out: str, stack: contextlib.AsyncExitStack) -> BinaryIO:
    """The output: ``-`` for stdout, else a file opened for appending (one clear error)."""
    if out == "-":
        stdout = sys.stdout
        if stdout is None or stdout.closed:
            raise InputError("--out -: standard output is closed; give --out FILE")
        stdout.flush()
        return stdout.buffer
    try:
        handle = open(out, "ab")  # noqa: SIM115  (closed by the stack)
    except OSError as error:
        raise InputError(
            f"--out {out}: cannot append there ({error.strerror or error}); give another file"
        ) from None
    stack.callback(_close_quietly, handle)
    return handle


def _close_quietly(handle: BinaryIO) -> None:
    """Close the output; a write that failed was reported already (each batch is flushed)."""
    with contextlib.suppress(OSError):
        handle.close()


def _describe(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def run_log_server(options: LogServerOptions) -> int:
    """Run :func:`serve_logs` until SIGINT or SIGTERM; return the exit status (1 when
    writing the output failed, else 0)."""

    async def main() -> LogServerStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                continue
            installed.append(sig)
        try:
            return await serve_logs(options, stop=stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    # Where signal handlers cannot be installed, Ctrl-C cancels main(), which still
    # shuts the server down in order before KeyboardInterrupt surfaces here.
    stats: list[LogServerStats] = []
    with contextlib.suppress(KeyboardInterrupt):
        stats.append(asyncio.run(main()))
    return 1 if stats and stats[0].write_error else 0
