"""Importing this package registers every primitive op."""

from . import elementwise, shape, reduce, linalg, conv, pool, misc, scan, im2col, gather, attention, sort  # noqa: F401
from . import collective, elementwise_math, linalg_dense  # noqa: F401
