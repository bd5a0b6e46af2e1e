"""torch.quantization / torch.ao.quantization as programs call them (the dynamic-quantization tutorial's
quantize_dynamic, eager-mode static quantization's QuantStub / prepare / convert, fuse_modules): graphnn computes in
float32, so these accept the model and keep it in float32, as half precision and autocast are accepted (the first
call warns once): the results are the float model's, not int8's."""

from __future__ import annotations

import copy
import warnings

from graphnn.core.dtypes import dtype

qint8, quint8, qint32, quint4x2 = dtype("qint8"), dtype("quint8"), dtype("qint32"), dtype("quint4x2")
_warned = [False]


def _warn(what: str) -> None:
    if not _warned[0]:
        _warned[0] = True
        warnings.warn(
            f"{what}: graphnn computes in float32, so the model stays in float32 (the float model's results, "
            "not int8's; no smaller weights)",
            UserWarning,
            stacklevel=3,
        )


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace: bool = False):
    _warn("quantize_dynamic")
    return model if inplace else copy.deepcopy(model)


def prepare(model, inplace: bool = False, allow_list=None, observer_non_leaf_module_list=None, **kwargs):
    _warn("prepare")
    return model if inplace else copy.deepcopy(model)


def convert(module, mapping=None, inplace: bool = False, remove_qconfig: bool = True, **kwargs):
    _warn("convert")
    return module if inplace else copy.deepcopy(module)


prepare_qat = prepare


def fuse_modules(model, modules_to_fuse, inplace: bool = False, **kwargs):
    """The model as it is (fusing conv, batch norm and ReLU changes no float result; graphnn.compile fuses them)."""
    return model if inplace else copy.deepcopy(model)


fuse_modules_qat = fuse_modules


class QConfig:
    def __init__(self, activation=None, weight=None):
        self.activation, self.weight = activation, weight


def get_default_qconfig(backend: str = "x86", version: int = 0) -> QConfig:
    return QConfig()


get_default_qat_qconfig = get_default_qconfig
default_qconfig = default_dynamic_qconfig = QConfig()


def _stub_module():
    from graphnn.nn.modules.module import Module

    class QuantStub(Module):
        """Marks where float tensors would be quantized: the identity here."""

        def __init__(self, qconfig=None):
            super().__init__()

        def forward(self, x):
            return x

    class DeQuantStub(QuantStub):
        """Marks where tensors would be dequantized: the identity here."""

    return QuantStub, DeQuantStub


QuantStub, DeQuantStub = _stub_module()
