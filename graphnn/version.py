"""torch.version's fields. `__version__` is the PyTorch API level graphnn implements, with graphnn's own release as
its local part ("2.13.0+graphnn.0.1.0"): programs that check `torch.__version__ >= (2, 0)` or parse it with
packaging take their modern branches, which graphnn supports. `graphnn_version` is the release alone (the
distribution's, the CLI's and exported artifacts'). The GPU toolkits graphnn does not use are None."""

from graphnn.torch_version import TorchVersion

graphnn_version = "0.1.0"
TORCH_API = "2.13.0"  # the PyTorch release whose API graphnn follows (its parity tests run against it)
__version__ = TorchVersion(f"{TORCH_API}+graphnn.{graphnn_version}")
cuda = None
hip = None
xpu = None
debug = False
git_version = "unknown"
