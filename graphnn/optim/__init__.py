"""graphnn.optim: optimizers whose steps run eagerly or inside a compiled training step, and lr_scheduler."""

from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam
from . import lr_scheduler, swa_utils

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "RMSprop",
    "NAdam",
    "RAdam",
    "LBFGS",
    "Muon",
    "ASGD",
    "SparseAdam",
    "lr_scheduler",
    "swa_utils",
]
