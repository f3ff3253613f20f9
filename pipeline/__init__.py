"""An asyncio pipeline framework: bounded channels, a structured runner, one
shared compute pool, shared-memory arrays and a typed event stream.

It knows nothing about k-NN; the tuning job built on it lives in ``stages``.

Names are imported on first use: a pool worker needs only a few of these
modules (shared arrays, errors), and every import is start-up time of a
cold pool.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
