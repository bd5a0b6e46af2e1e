"""graphnn.nn: layers, losses, init and functional."""

from . import attention, functional, init, parallel, utils
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parallel import DataParallel
from .parameter import Parameter

__all__ = ["functional", "init", "parallel", "utils", "Parameter", "DataParallel"] + list(_modules_all)
