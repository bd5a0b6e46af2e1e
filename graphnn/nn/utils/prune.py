"""nn.utils.prune, as PyTorch's: pruning replaces parameter <name> by the parameter <name>_orig and the buffer
<name>_mask, and a forward pre-hook (the pruning method itself) recomputes module.<name> = <name>_orig * <name>_mask
before each call, eagerly and inside graphnn.compile. Pruning a parameter again chains the methods in a
PruningContainer, whose new mask only prunes entries still unpruned. Masks are data: they are computed here with
NumPy (the random methods draw from graphnn's generator) and are graphnn tensors of the parameter's dtype."""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from collections.abc import Iterable

import numpy as np

from graphnn.core.tensor import Tensor, rand, tensor
from ._recomputed import RecomputedAttr


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy()) if isinstance(t, Tensor) else np.asarray(t)


def _like(arr: np.ndarray, t) -> Tensor:
    """`arr` as a graphnn tensor with the dtype of `t`."""
    return tensor(np.ascontiguousarray(arr, dtype=_np(t).dtype))


class BasePruningMethod(RecomputedAttr, metaclass=ABCMeta):
    """A pruning method; applied to a module it is the forward pre-hook recomputing module.<_tensor_name>.
    Subclasses set PRUNING_TYPE ('unstructured', 'structured' with a `dim`, or 'global') and compute_mask."""

    _tensor_name: str | None = None

    @property
    def name(self) -> str | None:  # (the attribute RecomputedAttr recomputes)
        return self._tensor_name

    @abstractmethod
    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The new mask for importance scores `t`, zero where default_mask (the mask so far) is zero."""

    def compute(self, module, training: bool) -> Tensor:
        return self.apply_mask(module)

    def apply_mask(self, module) -> Tensor:
        """<name>_orig * <name>_mask of the module."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return mask.to(dtype=orig.dtype) * orig

    @classmethod
    def apply(cls, module, name: str, *args, importance_scores=None, **kwargs) -> "BasePruningMethod":
        """Prune module.<name> with cls(*args, **kwargs) (chained after earlier pruning of it); returns the hook."""
        method = _composite_method(cls, module, name, *args, **kwargs)
        orig = getattr(module, name)
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(orig.shape):
                raise AssertionError(
                    f"importance_scores should have the same shape as parameter {name} of {module}, "
                    f"got {importance_scores.shape} vs {orig.shape}"
                )
        else:
            importance_scores = orig
        first = not isinstance(method, PruningContainer)
        if first:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = _like(np.ones(tuple(orig.shape)), orig)
        else:
            default_mask = tensor(_np(getattr(module, name + "_mask")).copy())
        try:
            mask = method.compute_mask(importance_scores, default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            object.__setattr__(module, name, method.apply_mask(module))
            method.install(module)
        except Exception:
            if first:
                orig = module._parameters.pop(name + "_orig")
                module.register_parameter(name, orig)
            raise
        return method

    def prune(self, t: Tensor, default_mask: Tensor | None = None, importance_scores: Tensor | None = None) -> Tensor:
        """t times the mask this method computes (from importance_scores, default: t)."""
        if importance_scores is not None:
            if tuple(importance_scores.shape) != tuple(t.shape):
                raise AssertionError(
                    "importance_scores should have the same shape as tensor t, "
                    f"got {importance_scores.shape} vs {t.shape}"
                )
        else:
            importance_scores = t
        if default_mask is None:
            default_mask = _like(np.ones(tuple(t.shape)), t)
        return t * self.compute_mask(importance_scores, default_mask=default_mask)

    def remove(self, module) -> None:
        """Make module.<name> a plain Parameter again (the <name>_orig object) holding the pruned values."""
        if self._tensor_name is None:
            raise AssertionError(f"Module {module} has to be pruned before pruning can be removed")
        name = self._tensor_name
        weight = self.apply_mask(module)
        if name in module.__dict__:
            delattr(module, name)
        orig = module._parameters[name + "_orig"]
        orig.data = weight.data
        delattr(module, name + "_orig")
        delattr(module, name + "_mask")
        setattr(module, name, orig)


def _hooks_of(module, name: str) -> list:
    """The pruning hooks of module.<name> (at most one is expected)."""
    return [h for h in module._forward_pre_hooks.values() if isinstance(h, BasePruningMethod) and h.name == name]


def _composite_method(cls, module, name: str, *args, **kwargs) -> BasePruningMethod:
    """cls(*args, **kwargs) for module.<name>, put in a PruningContainer after the method already pruning it."""
    old = _hooks_of(module, name)
    if len(old) > 1:
        raise AssertionError(
            f"Avoid adding multiple pruning hooks to the same tensor {name} of module {module}. Use a PruningContainer."
        )
    method = cls(*args, **kwargs)
    method._tensor_name = name
    if not old:
        return method
    old[0].uninstall()
    if isinstance(old[0], PruningContainer):
        old[0].add_pruning_method(method)
        return old[0]
    return PruningContainer(old[0], method)


class PruningContainer(BasePruningMethod):
    """A sequence of pruning methods applied one after the other to one parameter (iterative pruning)."""

    def __init__(self, *args):
        self._pruning_methods: tuple = ()
        if args:
            self._tensor_name = args[0]._tensor_name
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        """Append `method`, which must act on the same parameter name."""
        if method is not None and not isinstance(method, BasePruningMethod):
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(
                f"Can only add pruning methods acting on the parameter named '{self._tensor_name}' to "
                f"PruningContainer {self}. Found '{method._tensor_name}'"
            )
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The last method's mask computed on the entries (unstructured), the channels along its dim
        (structured) or the whole tensor (global) that default_mask has not pruned yet, merged into it."""
        method = self._pruning_methods[-1]
        scores = _np(t)
        mask = _np(default_mask).astype(scores.dtype)
        kind = getattr(method, "PRUNING_TYPE", None)
        if kind == "unstructured":
            where = mask == 1
        elif kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError(
                    'Pruning methods of PRUNING_TYPE "structured" need to have the attribute `dim` defined.'
                )
            dim = method.dim + scores.ndim if method.dim < 0 else method.dim
            if dim < 0:
                raise IndexError(f"Index is out of bounds for tensor with dimensions {scores.ndim}")
            keep = mask.sum(axis=tuple(d for d in range(scores.ndim) if d != dim)) != 0
            where = tuple(keep if d == dim else slice(None) for d in range(scores.ndim))
        elif kind == "global":
            where = (slice(None),) * scores.ndim
        else:
            raise ValueError(f"Unrecognized PRUNING_TYPE {kind}")
        part = method.compute_mask(tensor(scores[where].copy()), default_mask=tensor(mask[where].copy()))
        mask[where] = _np(part)
        return tensor(mask)


def _validate_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    integral = isinstance(amount, numbers.Integral)
    if (integral and amount < 0) or (not integral and not 0.0 <= float(amount) <= 1.0):
        raise ValueError(f"amount={amount} should either be a float in the range [0, 1] or a non-negative integer")


def _n_to_prune(amount, size: int) -> int:
    """The number of entries (channels) `amount` prunes out of `size`: an int as is, a fraction rounded."""
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    return round(amount * size)


def _structured_dim(t: np.ndarray, dim: int) -> int:
    if t.ndim <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. "
            f"Found tensor of shape {tuple(t.shape)} with {t.ndim} dims"
        )
    if dim >= t.ndim or dim < -t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(t.shape)}")
    return dim % t.ndim


def _unstructured_mask(default_mask: Tensor, order: np.ndarray, k: int) -> Tensor:
    """default_mask with the entries at the first k flat positions of `order` set to 0."""
    mask = _np(default_mask).copy()
    mask.reshape(-1)[order[:k]] = 0
    return tensor(mask)


def _channel_mask(t: np.ndarray, dim: int, pruned: np.ndarray, default_mask: Tensor) -> Tensor:
    """default_mask with the channels `pruned` of dimension `dim` zeroed."""
    mask = _np(default_mask).astype(t.dtype)
    index = [slice(None)] * t.ndim
    index[dim] = pruned
    mask[tuple(index)] = 0
    return tensor(mask)


class Identity(BasePruningMethod):
    """Prunes nothing (the mask is all ones)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    @classmethod
    def apply(cls, module, name: str):
        return super().apply(module, name)


class RandomUnstructured(BasePruningMethod):
    """Prunes `amount` entries (an int, or a fraction of the entries) chosen at random."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        k = _n_to_prune(self.amount, int(np.prod(tuple(t.shape))))
        if k == 0:
            return tensor(_np(default_mask).copy())
        order = np.argsort(-_np(rand(tuple(t.shape))).reshape(-1), kind="stable")
        return _unstructured_mask(default_mask, order, k)

    @classmethod
    def apply(cls, module, name: str, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(BasePruningMethod):
    """Prunes the `amount` entries of smallest absolute value."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        scores = _np(t)
        k = _n_to_prune(self.amount, scores.size)
        if k == 0:
            return tensor(_np(default_mask).copy())
        return _unstructured_mask(default_mask, np.argsort(np.abs(scores).reshape(-1), kind="stable"), k)

    @classmethod
    def apply(cls, module, name: str, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes `amount` channels along `dim` chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1):
        _validate_amount_init(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        scores = _np(t)
        dim = _structured_dim(scores, self.dim)
        k = _n_to_prune(self.amount, scores.shape[dim])
        if k == 0:
            return default_mask
        pruned = np.argsort(_np(rand(scores.shape[dim])), kind="stable")[:k]
        return _channel_mask(scores, dim, pruned, default_mask)

    @classmethod
    def apply(cls, module, name: str, amount, dim: int = -1):
        return super().apply(module, name, amount=amount, dim=dim)


def _channel_norms(t: np.ndarray, n, dim: int) -> np.ndarray:
    """The n-norm (a number, inf, -inf, or 'fro') of each channel along dim."""
    a = np.abs(np.moveaxis(t, dim, 0).reshape(t.shape[dim], -1))
    if n == "fro":
        n = 2
    if not isinstance(n, numbers.Real):
        raise ValueError(f"ln_structured: unsupported norm n={n!r} (a number, inf, -inf or 'fro')")
    if n == np.inf:
        return a.max(axis=1)
    if n == -np.inf:
        return a.min(axis=1)
    if n == 0:
        return (a != 0).sum(axis=1).astype(t.dtype)
    return (a**n).sum(axis=1) ** (1.0 / n)


class LnStructured(BasePruningMethod):
    """Prunes the `amount` channels along `dim` of smallest n-norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1):
        _validate_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        scores = _np(t)
        dim = _structured_dim(scores, self.dim)
        k = _n_to_prune(self.amount, scores.shape[dim])
        if k == 0:
            return default_mask
        order = np.argsort(-_channel_norms(scores, self.n, dim), kind="stable")  # kept: the largest norms
        return _channel_mask(scores, dim, order[scores.shape[dim] - k :], default_mask)

    @classmethod
    def apply(cls, module, name: str, amount, n, dim: int, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    """Prunes the entries where the given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise AssertionError(
                f"default_mask shape {default_mask.shape} must match self.mask shape {self.mask.shape}"
            )
        base = _np(default_mask)
        return tensor(base * _np(self.mask).astype(base.dtype))

    @classmethod
    def apply(cls, module, name: str, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name: str):
    """Prune module.<name> with an all-ones mask. Returns the module."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name: str, amount):
    """Prune `amount` random entries of module.<name> (int: that many; float: that fraction). Returns the module."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name: str, amount, importance_scores=None):
    """Prune the `amount` entries of module.<name> of smallest |importance_scores| (default: the parameter)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name: str, amount, dim: int):
    """Prune `amount` random channels of module.<name> along dim. Returns the module."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name: str, amount, n, dim: int, importance_scores=None):
    """Prune the `amount` channels of module.<name> along dim of smallest n-norm. Returns the module."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name: str, mask):
    """Prune module.<name> where `mask` is 0. Returns the module."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the (module, name) `parameters` together, as one vector, with the unstructured `pruning_method`
    class built from kwargs (e.g. L1Unstructured, amount=0.2): each gets its slice of the joint mask."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = {} if importance_scores is None else importance_scores
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    scores = np.concatenate([_np(importance_scores.get((m, n), getattr(m, n))).reshape(-1) for m, n in parameters])
    masks = [getattr(m, n + "_mask", None) for m, n in parameters]
    default = np.concatenate(
        [np.ones(getattr(m, n).numel()) if k is None else _np(k).reshape(-1) for (m, n), k in zip(parameters, masks)]
    )
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. '
            f"Found method {pruning_method} of type {method.PRUNING_TYPE}"
        )
    container = PruningContainer(method)
    final = _np(container.compute_mask(tensor(scores), tensor(default.astype(scores.dtype))))
    start = 0
    for module, name in parameters:
        shape = tuple(getattr(module, name).shape)
        size = int(np.prod(shape))
        custom_from_mask(module, name, mask=tensor(final[start : start + size].reshape(shape)))
        start += size


def remove(module, name: str):
    """Make the pruning of module.<name> permanent: module.<name> becomes a Parameter holding the pruned values,
    <name>_orig, <name>_mask and the hook go. Returns the module."""
    for hook in _hooks_of(module, name):
        hook.remove(module)
        hook.uninstall()
        return module
    raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module) -> bool:
    """Has the module, or one of its submodules, a pruning hook?"""
    return any(
        isinstance(hook, BasePruningMethod)
        for _, sub in module.named_modules()
        for hook in sub._forward_pre_hooks.values()
    )
