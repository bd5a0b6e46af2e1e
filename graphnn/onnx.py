"""`torch.onnx`: scripts import it for an optional export; graphnn writes no ONNX (its export format is a native
library, graphnn.export), so exporting is a clear error."""

from __future__ import annotations


def export(model, args=None, f=None, *rest, **kwargs):
    raise NotImplementedError(
        "graphnn.onnx.export: graphnn does not write ONNX models; graphnn.export(model, inputs, directory) writes "
        "a native library with a C header instead"
    )


def is_in_onnx_export() -> bool:
    return False
