"""The k-NN tuning job: load, partition, plan, neighbours, score, rank; and its model.

The entry points are :func:`tune` and :class:`Tuning`, whose result's
``model()`` is a :class:`KNNModel`, and :func:`predict` / :class:`Prediction`
to classify many samples on the pool; the stage functions in
:mod:`stages.flow` can be wired by hand into a :class:`pipeline.Pipeline`.

Names are imported on first use, so a pool worker that only needs the kernels
(``stages.neighbours``) does not import scikit-learn.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
