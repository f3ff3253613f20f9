"""Log consumer: collects newline-delimited JSON records sent by any number of producers.

Every line that holds a JSON object is appended to the output as one compact JSON line,
re-serialised with ``json.dumps(obj, separators=(",", ":"))``. Re-serialising rather than
copying the received bytes means the output only ever contains what this process parsed
itself: one object per line, ASCII only, whatever whitespace or encoding tricks arrived.

Input is never trusted. Lines that are not UTF-8 JSON objects are counted as ``rejected``;
lines longer than ``max_line_bytes`` are skipped chunk by chunk, never held in memory, and
counted as ``oversized``. Either way the connection stays open. Blank lines are ignored.
A final line without a newline at EOF counts like any other line.

Connections beyond ``max_connections`` are accepted and closed at once (counted as
``refused``) so that a flood of producers cannot exhaust file descriptors or memory; a
:class:`~pipeline.logclient.TcpLineSender` simply retries later.

On stop the server stops listening, half-closes every connection (a polite producer then
closes its side) and keeps reading each one until EOF or until it has been quiet for a
moment, so everything producers sent before the stop is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TextIO

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_PORT",
    "LineSplitter",
    "LogServerStats",
    "encode_record",
    "parse_listen",
    "run_log_server",
    "serve_logs",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18842
DEFAULT_MAX_LINE_BYTES = 1 << 20

_CHUNK = 64 * 1024
_QUIET_GRACE = 0.2
_LISTEN_USAGE = "--listen expects HOST:PORT, e.g. 127.0.0.1:18842"


@dataclass
class LogServerStats:
    """Totals over the lifetime of one server."""

    connections: int = 0
    accepted: int = 0
    rejected: int = 0
    oversized: int = 0
    timed_out: int = 0
    refused: int = 0


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


def encode_record(line: bytes) -> bytes | None:
    """Return ``line`` re-serialised as one compact JSON line if it holds a JSON object."""
    try:
        obj = json.loads(line.decode("utf-8"))
        if not isinstance(obj, dict):
            return None
        return json.dumps(obj, separators=(",", ":")).encode("ascii") + b"\n"
    except (ValueError, RecursionError):
        return None


class _Connection:
    """Per-connection counters, plus what shutdown needs to hurry the connection along."""

    def __init__(self, peer: str, writer: asyncio.StreamWriter) -> None:
        self.peer = peer
        self.writer = writer
        self.accepted = 0
        self.rejected = 0
        self.oversized = 0
        self.timed_out = False
        self.deadline: asyncio.Timeout | None = None


class _LogServer:
    """Connection bookkeeping shared by all handlers; the sink is written only here."""

    def __init__(
        self,
        sink: BinaryIO,
        report: TextIO,
        *,
        max_line_bytes: int,
        idle_timeout: float,
        max_connections: int,
    ) -> None:
        self.stats = LogServerStats()
        self._sink = sink
        self._report = report
        self._max_line_bytes = max_line_bytes
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._active: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False

    def on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Registers the connection synchronously so that shutdown never misses one."""
        if len(self._active) >= self._max_connections:
            self.stats.refused += 1
            writer.transport.abort()
            return
        self.stats.connections += 1
        conn = _Connection(_peer_name(writer), writer)
        task = asyncio.get_running_loop().create_task(self._serve(reader, conn))
        self._active[task] = conn
        task.add_done_callback(self._forget)

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
        splitter = LineSplitter(self._max_line_bytes)
        while True:
            wait = _QUIET_GRACE if self._stopping else self._idle_timeout
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
                self._write(conn, splitter.finish())
                return
            self._write(conn, splitter.feed(data))

    def _write(self, conn: _Connection, lines: list[bytes | None]) -> None:
        out: list[bytes] = []
        for line in lines:
            if line is None:
                conn.oversized += 1
            elif not line.strip():
                continue
            elif (record := encode_record(line)) is None:
                conn.rejected += 1
            else:
                out.append(record)
                conn.accepted += 1
        if out:
            self._sink.write(b"".join(out))
            self._sink.flush()

    def _account(self, conn: _Connection) -> None:
        self.stats.accepted += conn.accepted
        self.stats.rejected += conn.rejected
        self.stats.oversized += conn.oversized
        self.stats.timed_out += int(conn.timed_out)
        note = " (idle timeout)" if conn.timed_out else ""
        self._say(
            f"logs: {conn.peer} disconnected: accepted={conn.accepted} "
            f"rejected={conn.rejected} oversized={conn.oversized}{note}"
        )

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._say(f"logs: connection handler failed: {exc!r}")

    def say_total(self) -> None:
        s = self.stats
        self._say(
            f"logs: total: connections={s.connections} accepted={s.accepted} "
            f"rejected={s.rejected} oversized={s.oversized} timed_out={s.timed_out} "
            f"refused={s.refused}"
        )

    def _say(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(message, file=self._report, flush=True)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer)


async def serve_logs(
    host: str,
    port: int,
    out: str,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    idle_timeout: float = 300.0,
    max_connections: int = 1024,
    ready: Callable[[tuple[str, int]], None] | None = None,
    stop: asyncio.Event | None = None,
    report: TextIO | None = None,
    drain_timeout: float = 2.0,
) -> LogServerStats:
    """Serve producers until ``stop`` is set (or the task is cancelled); return the totals.

    ``out`` is a file opened for appending, or ``"-"`` for stdout. ``ready`` receives the
    bound address once listening, so port 0 can be used. Summaries go to ``report``
    (stderr when None, looked up at call time so redirection is honoured). On stop,
    connections get up to ``drain_timeout`` seconds to deliver what they already sent.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    if idle_timeout <= 0:
        raise ValueError("idle_timeout must be positive")
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    stop = stop if stop is not None else asyncio.Event()
    report = report if report is not None else sys.stderr

    with contextlib.ExitStack() as stack:
        if out == "-":
            sys.stdout.flush()
            sink: BinaryIO = sys.stdout.buffer
        else:
            sink = stack.enter_context(open(out, "ab"))
        state = _LogServer(
            sink,
            report,
            max_line_bytes=max_line_bytes,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
        server = await asyncio.start_server(state.on_connect, host, port)
        try:
            if ready is not None:
                name = server.sockets[0].getsockname()
                ready((str(name[0]), int(name[1])))
            await stop.wait()
        finally:
            server.close()
            try:
                await state.shutdown(drain_timeout)
                await server.wait_closed()
            finally:
                with contextlib.suppress(OSError, ValueError):
                    sink.flush()
                state.say_total()
    return state.stats


def run_log_server(
    host: str,
    port: int,
    out: str,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    idle_timeout: float = 300.0,
    max_connections: int = 1024,
    ready: Callable[[tuple[str, int]], None] | None = None,
    report: TextIO | None = None,
    drain_timeout: float = 2.0,
) -> int:
    """Run :func:`serve_logs` until SIGINT or SIGTERM; return the exit status (0)."""

    async def main() -> None:
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
            await serve_logs(
                host,
                port,
                out,
                max_line_bytes=max_line_bytes,
                idle_timeout=idle_timeout,
                max_connections=max_connections,
                ready=ready,
                stop=stop,
                report=report,
                drain_timeout=drain_timeout,
            )
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    # Where signal handlers cannot be installed, Ctrl-C cancels main(), which still
    # shuts the server down in order before KeyboardInterrupt surfaces here.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def parse_listen(
    spec: str, default_host: str = DEFAULT_HOST, default_port: int = DEFAULT_PORT
) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``:PORT``, ``PORT`` or ``HOST`` (IPv6 as ``[ADDR]:PORT``)."""
    text = spec.strip()
    if not text:
        raise _listen_error(spec, "empty")
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise _listen_error(spec, "unbalanced brackets")
        port = _listen_port(spec, tail[1:]) if tail else default_port
        _check_ipv6(spec, host)
    elif text.isascii() and text.isdigit():
        host, port = default_host, _listen_port(spec, text)
    elif text.count(":") > 1:
        host, port = text, default_port
        _check_ipv6(spec, host)
    else:
        name, colon, port_text = text.partition(":")
        host = name or default_host
        port = _listen_port(spec, port_text) if colon else default_port
    if any(ch.isspace() or ch in "/?#@[]" for ch in host):
        raise _listen_error(spec, f"bad host {host!r}")
    return host, port


def _listen_error(spec: str, why: str) -> ValueError:
    return ValueError(f"{_LISTEN_USAGE} (got {spec!r}: {why})")


def _listen_port(spec: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise _listen_error(spec, "port must be a number in 0..65535")
    return int(text)


def _check_ipv6(spec: str, host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise _listen_error(spec, f"bad IPv6 address {host!r}") from None
