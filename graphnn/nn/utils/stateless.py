"""torch.nn.utils.stateless.functional_call (the older home of graphnn.func.functional_call)."""

from graphnn.func import functional_call  # noqa: F401
