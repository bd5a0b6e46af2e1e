from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import Flatten, ModuleList, Sequential
from .conv import Conv1d, Conv2d, Conv3d
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .pooling import MaxPool1d, MaxPool2d, MaxPool3d

__all__ = ["Module", "Linear", "Identity", "Conv1d", "Conv2d", "Conv3d", "ReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "MaxPool1d", "MaxPool2d", "MaxPool3d", "MSELoss", "L1Loss", "NLLLoss", "CrossEntropyLoss",
           "Sequential", "ModuleList", "Flatten"]
