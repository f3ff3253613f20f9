"""``python -m pipeline``: the k-NN command line as a process, :func:`stages.entry.main`.

The framework's one arrow back up: this entry assembles the job from ``stages``.
"""

import signal

# Ctrl-C takes the system's default action until the entry installs its handlers (see
# stages.entry._default_ctrl_c), from the very start: before even the imports below.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

from stages.entry import main

main()
