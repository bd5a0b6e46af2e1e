"""graphnn.optim: optimizers whose steps run eagerly or inside a compiled training step."""

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
