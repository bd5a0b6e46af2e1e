"""torch.nn.modules.dropout's names; the classes live in regularization.py. graphnn's dropouts share Dropout as their
base, which stands for PyTorch's _DropoutNd (`isinstance(m, _DropoutNd)` holds for each of them)."""

from .regularization import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout

_DropoutNd = Dropout

__all__ = ["AlphaDropout", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"]
