"""Importing this package registers every primitive op."""
from . import elementwise, shape, reduce, linalg, conv, pool, misc, scan  # noqa: F401
