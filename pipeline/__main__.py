"""``python -m pipeline``: the k-NN command line, :mod:`stages.cli`.

The framework's one arrow back up: this entry assembles the job from ``stages``.

Signals are made to interrupt as Ctrl-C does before anything else is
imported (see :mod:`pipeline.interrupts`), so a signal at any moment ends the
command the same way: exit status 130, no traceback, nothing left behind.
"""

import signal
import sys

from .interrupts import TERMINATING, interrupts

interrupts.install()
status = 130
try:
    with interrupts.shield():
        from stages.cli import main
    status = main()
except KeyboardInterrupt:  # interrupted as the command started or ended
    print("interrupted", file=sys.stderr)
except MemoryError:  # while importing: too little memory to start at all
    print("error: out of memory while starting; raise the memory limit", file=sys.stderr)
    status = 1
finally:
    # Done: a signal from here on would turn a clean exit into death by signal (the
    # interpreter's finalization resets Python handlers to the defaults, though not
    # SIG_IGN), so the signals are ignored while the interpreter ends.
    for _signal in TERMINATING:
        signal.signal(_signal, signal.SIG_IGN)
sys.exit(status)
