"""The one HOST:PORT parser behind --listen, --metrics and --log-to tcp://HOST:PORT."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pipeline.logs.address import format_address, parse_listen, parse_log_target, parse_metrics

LISTEN_USAGE = r"--listen expects HOST:PORT, e\.g\. 127\.0\.0\.1:18842"
METRICS_USAGE = r"--metrics expects HOST:PORT or PORT, e\.g\. 127\.0\.0\.1:18843"
TARGET_USAGE = r"--log-to expects tcp://HOST:PORT, e\.g\. tcp://127\.0\.0\.1:18842"


def as_target(spec: str) -> tuple[str, int]:
    return parse_log_target(f"tcp://{spec}")


USES: list[tuple[Callable[[str], tuple[str, int]], str]] = [
    (parse_listen, LISTEN_USAGE),
    (parse_metrics, METRICS_USAGE),
    (as_target, TARGET_USAGE),
]
USE_IDS = ["listen", "metrics", "tcp-target"]


@pytest.mark.parametrize(("parse", "usage"), USES, ids=USE_IDS)
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("localhost:65535", ("localhost", 65535)),
        ("logs.example.org:1", ("logs.example.org", 1)),
        ("[::1]:9000", ("::1", 9000)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        ("0.0.0.0:18843 ", ("0.0.0.0", 18843)),
    ],
)
def test_every_use_reads_a_whole_address_alike(
    parse: Callable[[str], tuple[str, int]], usage: str, spec: str, expected: tuple[str, int]
) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(("parse", "usage"), USES, ids=USE_IDS)
@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "host:",
        "host:http",
        "host:65536",
        "host:-1",
        ":99999",
        "host:8\u0660",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[nope]:80",
        "[]:80",
        "a b:80",
        "host/x:80",
        "user@h:80",
        "h:80/path",
        "1:2:zz",
    ],
)
def test_every_use_refuses_a_bad_address_alike(
    parse: Callable[[str], tuple[str, int]], usage: str, spec: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{usage} \(got "):
        parse(spec)


@pytest.mark.parametrize(
    ("spec", "listen", "metrics", "target"),
    [
        # a port alone: the consumer's host defaults to loopback, a target's cannot
        ("9000", ("127.0.0.1", 9000), ("127.0.0.1", 9000), None),
        (":9000", ("127.0.0.1", 9000), ("127.0.0.1", 9000), None),
        # a host alone: only --listen has a default port
        ("logs.example.org", ("logs.example.org", 18842), None, None),
        ("[::1]", ("::1", 18842), None, None),
        ("::", ("::", 18842), None, None),
        ("::1:80", ("::1:80", 18842), None, None),  # a bare IPv6 address is all host
        # port 0 binds any free port, and names nothing to connect to
        ("0.0.0.0:0", ("0.0.0.0", 0), ("0.0.0.0", 0), None),
    ],
)
def test_the_uses_differ_only_in_what_may_be_left_out(
    spec: str,
    listen: tuple[str, int] | None,
    metrics: tuple[str, int] | None,
    target: tuple[str, int] | None,
) -> None:
    for (parse, usage), expected in zip(USES, (listen, metrics, target), strict=True):
        if expected is None:
            with pytest.raises(ValueError, match=rf"^{usage} "):
                parse(spec)
        else:
            assert parse(spec) == expected


def test_listen_defaults_can_be_given() -> None:
    assert parse_listen("7", default_host="0.0.0.0") == ("0.0.0.0", 7)
    assert parse_listen("host", default_port=1) == ("host", 1)
    assert parse_metrics(":9100", default_host="0.0.0.0") == ("0.0.0.0", 9100)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tcp://127.0.0.1:18842", ("127.0.0.1", 18842)),
        ("TCP://localhost:65535", ("localhost", 65535)),
        ("tcp://[::1]:9000", ("::1", 9000)),
    ],
)
def test_a_target_takes_the_tcp_scheme_in_any_case(spec: str, expected: tuple[str, int]) -> None:
    assert parse_log_target(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "127.0.0.1:18842", "udp://h:1", "tcp:/h:1", "tcp://", "tcp:// h:80", "tcp://h"]
)
def test_a_target_without_the_scheme_or_an_address_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=rf"^{TARGET_USAGE} \(got {re.escape(repr(spec))}: "):
        parse_log_target(spec)


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [("127.0.0.1", 18842, "127.0.0.1:18842"), ("::1", 0, "[::1]:0"), ("logs", 1, "logs:1")],
)
def test_an_address_is_shown_as_the_parsers_read_it(host: str, port: int, shown: str) -> None:
    assert format_address(host, port) == shown
    assert parse_listen(shown) == parse_metrics(shown) == (host, port)
