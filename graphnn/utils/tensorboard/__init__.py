"""graphnn.utils.tensorboard: torch.utils.tensorboard's SummaryWriter, writing TensorBoard event files
(TFRecord framing, Event/Summary protobufs encoded by hand: no TensorFlow, protobuf or tensorboard needed)."""

from .writer import SummaryWriter

__all__ = ["SummaryWriter"]
