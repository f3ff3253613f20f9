"""``HOST:PORT`` as the log options write it, read in one place.

Where the consumer binds (``--listen``, ``--metrics``) and where a run sends
(``--log-to tcp://HOST:PORT``) are read by one parser, so an address written for one is
read the same way by the others: IPv6 in brackets (``[ADDR]:PORT``), a port a plain
number, a host without spaces or URL punctuation. They differ only in what may be left
out (the consumer's host and port have defaults, a target has none), in whether port 0
(any free port, which only binding can use) is allowed, and in the usage line an error
starts with.
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "format_address",
    "parse_address",
    "parse_listen",
    "parse_log_target",
    "parse_metrics",
]

DEFAULT_HOST = "127.0.0.1"
"""The consumer's host when none is given: loopback, so nothing is exposed unasked."""
DEFAULT_PORT = 18842
"""The consumer's port when ``--listen`` gives none."""

_MAX_PORT = 65535
_LISTEN_USAGE = "--listen expects HOST:PORT, e.g. 127.0.0.1:18842"
_METRICS_USAGE = "--metrics expects HOST:PORT or PORT, e.g. 127.0.0.1:18843"
_TARGET_USAGE = "--log-to expects tcp://HOST:PORT, e.g. tcp://127.0.0.1:18842"


def parse_listen(
    spec: str, default_host: str = DEFAULT_HOST, default_port: int = DEFAULT_PORT
) -> tuple[str, int]:
    """Parse ``--listen``: ``HOST:PORT``, ``:PORT``, ``PORT`` or ``HOST`` (IPv6 as
    ``[ADDR]:PORT``, ``[ADDR]`` or a bare address); port 0 binds any free port."""
    return parse_address(spec, _LISTEN_USAGE, default_host=default_host, default_port=default_port)


def parse_metrics(spec: str, default_host: str = DEFAULT_HOST) -> tuple[str, int]:
    """Parse ``--metrics``: ``HOST:PORT``, ``:PORT`` or ``PORT`` (IPv6 as ``[ADDR]:PORT``).

    The port has no default (no port is the obvious one for metrics); the host defaults
    to loopback, so metrics are not served beyond this machine unless asked for.
    """
    return parse_address(spec, _METRICS_USAGE, default_host=default_host)


def parse_log_target(spec: str) -> tuple[str, int]:
    """Parse ``--log-to``: ``tcp://HOST:PORT`` (IPv6 as ``tcp://[ADDR]:PORT``).

    Nothing may be left out, since a run cannot guess where its consumer is, and port 0
    names no consumer.
    """
    return parse_address(spec, _TARGET_USAGE, scheme="tcp", lowest_port=1)


def parse_address(
    spec: str,
    usage: str,
    *,
    default_host: str | None = None,
    default_port: int | None = None,
    scheme: str | None = None,
    lowest_port: int = 0,
) -> tuple[str, int]:
    """``(host, port)`` from ``spec``, or :class:`ValueError` starting with ``usage``.

    ``scheme`` (compared case-insensitively) must then prefix the address as
    ``scheme://``. A part left out takes its default; without one it is an error.
    """
    text = spec.strip()
    if scheme is not None:
        given, sep, text = text.partition("://")
        if not sep or given.lower() != scheme:
            raise _error(usage, spec, f"expected the {scheme}:// scheme")
    if not text:
        raise _error(usage, spec, "empty")
    host: str | None
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise _error(usage, spec, "unbalanced brackets")
        port = _port(usage, spec, tail[1:], lowest_port) if tail else default_port
        _check_ipv6(usage, spec, host)
    elif text.isascii() and text.isdigit():
        host, port = default_host, _port(usage, spec, text, lowest_port)
    elif text.count(":") > 1:
        _check_ipv6(usage, spec, text)
        if default_port is None:
            raise _error(usage, spec, "an IPv6 address and its port are written [ADDR]:PORT")
        host, port = text, default_port
    else:
        name, colon, port_text = text.partition(":")
        host = name or default_host
        port = _port(usage, spec, port_text, lowest_port) if colon else default_port
    if host is None:
        raise _error(usage, spec, "no host")
    if any(ch.isspace() or ch in "/?#@[]" for ch in host):
        raise _error(usage, spec, f"bad host {host!r}")
    if port is None:
        raise _error(usage, spec, "no port")
    return host, port


def format_address(host: str, port: int) -> str:
    """``host:port`` as the parsers read it back: an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _error(usage: str, spec: str, why: str) -> ValueError:
    return ValueError(f"{usage} (got {spec!r}: {why})")


def _port(usage: str, spec: str, text: str, lowest: int) -> int:
    if not (text.isascii() and text.isdigit()) or not lowest <= int(text) <= _MAX_PORT:
        raise _error(usage, spec, f"port must be a number in {lowest}..{_MAX_PORT}")
    return int(text)


def _check_ipv6(usage: str, spec: str, host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise _error(usage, spec, f"bad IPv6 address {host!r}") from None
