"""torch.version's fields: graphnn's version, and None for the GPU toolkits it does not use."""

__version__ = "0.1.0"
cuda = None
hip = None
xpu = None
debug = False
git_version = "unknown"
