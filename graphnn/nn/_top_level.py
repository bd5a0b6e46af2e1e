"""nn.functional functions that PyTorch also offers as `torch.NAME` with the same positional signature
(`torch.pairwise_distance(a, b)`, `torch.pixel_shuffle(x, 2)`, `torch.conv2d(x, w)`), installed into graphnn's
namespace. Those whose torch-level form differs (`torch.batch_norm`'s argument order, the losses' integer
`reduction`, `torch.embedding(weight, indices)`) are left out, as is `torch.dropout`, whose flag is `train`."""

from __future__ import annotations

from . import functional as F

SAME_SIGNATURE = (
    "pairwise_distance",
    "cosine_similarity",
    "pdist",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "layer_norm",
    "group_norm",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "prelu",
    "selu",
    "celu",
    "threshold",
    "bilinear",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
)


def dropout(input, p: float, train: bool):
    """`torch.dropout(input, p, train)`: F.dropout with PyTorch's torch-level flag name."""
    return F.dropout(input, p, train)


def install(namespace: dict) -> None:
    """Add the functions above to `namespace` (graphnn's globals), keeping any name it already defines."""
    for name in SAME_SIGNATURE:
        namespace.setdefault(name, getattr(F, name))
    namespace.setdefault("dropout", dropout)
