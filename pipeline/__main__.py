"""``python -m pipeline``: see :mod:`pipeline.cli`.

SIGTERM and SIGHUP are made to interrupt as Ctrl-C does before anything else
is imported, so a signal at any moment ends the command the same way: exit
status 130, no traceback, nothing left behind.
"""

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


for _signal in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signal, _interrupt)

try:
    from .cli import main
except KeyboardInterrupt:  # interrupted while importing
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
