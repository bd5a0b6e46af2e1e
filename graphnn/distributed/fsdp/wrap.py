"""torch.distributed.fsdp.wrap's policies: which submodules FSDP would wrap on their own. graphnn's FSDP keeps the
whole model on every rank, so wrapping decides nothing; the policies answer as PyTorch's do, for programs that call
them, and enable_wrap / wrap wrap as PyTorch's."""

from __future__ import annotations

import contextlib


def always_wrap_policy(module, recurse: bool, nonwrapped_numel: int, **kwargs) -> bool:
    return True


def size_based_auto_wrap_policy(
    module,
    recurse: bool,
    nonwrapped_numel: int,
    min_num_params: int = int(1e8),
    force_leaf_modules=None,
    exclude_wrap_modules=None,
) -> bool:
    """Recurse into any module; wrap one holding at least min_num_params parameters not wrapped below it."""
    return True if recurse else nonwrapped_numel >= min_num_params


def lambda_auto_wrap_policy(module, recurse: bool, nonwrapped_numel: int, lambda_fn) -> bool:
    return True if recurse else bool(lambda_fn(module))


def transformer_auto_wrap_policy(module, recurse: bool, nonwrapped_numel: int, transformer_layer_cls) -> bool:
    return True if recurse else isinstance(module, tuple(transformer_layer_cls))


class ModuleWrapPolicy:
    """Wrap every module of the given classes."""

    def __init__(self, module_classes):
        self._module_classes = tuple(module_classes)

    def __call__(self, module, recurse: bool, nonwrapped_numel: int) -> bool:
        return True if recurse else isinstance(module, self._module_classes)


_wrapping: list = []


@contextlib.contextmanager
def enable_wrap(*, wrapper_cls, **wrapper_kwargs):
    """Within it, wrap(module) wraps with wrapper_cls(module, **wrapper_kwargs)."""
    _wrapping.append((wrapper_cls, wrapper_kwargs))
    try:
        yield
    finally:
        _wrapping.pop()


def wrap(module, **wrap_overrides):
    """module wrapped as the enclosing enable_wrap says (unchanged outside one)."""
    if not _wrapping:
        return module
    cls, kwargs = _wrapping[-1]
    return cls(module, **{**kwargs, **wrap_overrides})
