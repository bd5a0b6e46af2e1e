"""torch.ao.quantization: graphnn/quantization.py's names."""

from graphnn.quantization import (  # noqa: F401
    DeQuantStub,
    QConfig,
    QuantStub,
    convert,
    default_dynamic_qconfig,
    default_qconfig,
    fuse_modules,
    fuse_modules_qat,
    get_default_qat_qconfig,
    get_default_qconfig,
    prepare,
    prepare_qat,
    qint8,
    qint32,
    quantize_dynamic,
    quint8,
)
