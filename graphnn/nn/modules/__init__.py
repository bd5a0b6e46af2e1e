from .activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .container import Flatten, ModuleList, Sequential
from .conv import Conv1d, Conv2d, Conv3d
from .linear import Identity, Linear
from .loss import BCELoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import Module
from .pooling import MaxPool1d, MaxPool2d, MaxPool3d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .regularization import BatchNorm1d, BatchNorm2d, BatchNorm3d, Dropout
from .vision import (AvgPool1d, AvgPool2d, ConstantPad2d, CosineSimilarity, Embedding, MaxUnpool2d, PairwiseDistance,
                     PixelShuffle, ReplicationPad1d, ReplicationPad2d, Upsample, UpsamplingBilinear2d,
                     UpsamplingNearest2d, ZeroPad2d)

__all__ = ["Module", "Linear", "Identity", "Conv1d", "Conv2d", "Conv3d", "ReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "LeakyReLU", "Softplus", "ELU", "SiLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d",
           "AvgPool2d", "MaxUnpool2d", "MSELoss", "L1Loss", "NLLLoss", "CrossEntropyLoss", "KLDivLoss", "BCELoss",
           "SmoothL1Loss", "Sequential", "ModuleList", "Flatten", "Dropout", "BatchNorm1d", "BatchNorm2d",
           "BatchNorm3d", "ZeroPad2d", "ConstantPad2d", "ReplicationPad1d", "ReplicationPad2d", "Upsample",
           "UpsamplingBilinear2d", "UpsamplingNearest2d", "PixelShuffle", "Embedding", "CosineSimilarity",
           "PairwiseDistance", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase"]
