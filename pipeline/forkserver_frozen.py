"""Imported last in the workers' forkserver: what it preloaded is left out of its garbage
collections from then on.

The server forks every worker, after which its pages are shared with them
until written; a full collection in the server (one came in about one run
of four, as the first workers were forked) walks every object it imported
and writes to each of their pages, copying them all, on the cores the
workers start on. Each worker freezes what it inherits as well
(:func:`pipeline.worker.init_worker`). Only the forkserver imports this
module, by name, as its last preload.
"""

import gc

gc.freeze()
