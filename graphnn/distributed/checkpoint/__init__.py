"""torch.distributed.checkpoint: the state-dict helpers (checkpoint/state_dict.py) that FSDP2 programs save and load
with. graphnn keeps whole parameters on every rank, so the full state dicts are the modules' own."""

from . import state_dict  # noqa: F401
