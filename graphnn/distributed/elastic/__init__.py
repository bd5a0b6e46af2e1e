"""torch.distributed.elastic's names that torchrun scripts import (graphnn's ranks are started by mpirun)."""
