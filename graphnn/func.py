"""graphnn.func: torch.func's functional entry points - functional_call, grad, grad_and_value, vjp, jacrev, vmap -
on graphnn's autograd (eager and inside graphnn.compile). vmap applies the function to each slice along in_dims and
stacks the results: the same values as a vectorized map, one call per slice."""

from __future__ import annotations

import contextlib
import threading


@contextlib.contextmanager
def _swapped(module, tensors: dict, strict: bool):
    """Within the block the module's parameters and buffers named in `tensors` are those tensors."""
    named = dict(module.named_parameters(remove_duplicate=False))
    named.update(dict(module.named_buffers(remove_duplicate=False)))
    if strict:
        missing = sorted(set(named) - set(tensors))
        unexpected = sorted(set(tensors) - set(named))
        if missing or unexpected:
            raise RuntimeError(f"functional_call got missing keys {missing} and unexpected keys {unexpected}")
    saved = []
    for name, t in tensors.items():
        *path, leaf = name.split(".")
        owner = module
        for p in path:
            owner = getattr(owner, p)
        table = "_parameters" if leaf in owner._parameters else "_buffers" if leaf in owner._buffers else None
        if table is None:
            raise AttributeError(f"functional_call: {type(module).__name__} has no parameter or buffer {name!r}")
        saved.append((owner, table, leaf, getattr(owner, table)[leaf]))
        getattr(owner, table)[leaf] = t
    try:
        yield
    finally:
        for owner, table, leaf, old in reversed(saved):
            getattr(owner, table)[leaf] = old


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *, tie_weights=True, strict=False):
    """module(*args, **kwargs) with its parameters and buffers replaced by the given tensors (a dict, or a tuple
    of dicts) for this call only."""
    dicts = parameter_and_buffer_dicts
    tensors = {}
    for d in dicts if isinstance(dicts, (tuple, list)) else (dicts,):
        tensors.update(d)
    args = args if isinstance(args, tuple) else (args,)
    with _swapped(module, tensors, strict):
        return module(*args, **(kwargs or {}))


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _tree_map(fn, x):
    """fn applied to every tensor of x (a tensor, or dicts, lists, tuples, namedtuples of them; compiler.pytree's
    trees), in the same structure."""
    from graphnn.compiler.pytree import map_tensors

    return map_tensors(x, lambda t, _path: fn(t))


def _tree_leaves(x) -> list:
    from graphnn.compiler.pytree import flatten

    out: list = []
    flatten(x, out)
    return out


_nesting = threading.local()  # .depth: grad transforms running in this thread (the outermost returns plain tensors)


def _detached(x):
    return x.detach()


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """A function returning (gradient of func's scalar output w.r.t. the argnums arguments, func's output)."""
    from graphnn.autograd import grad as _grad
    from graphnn.core.grad_mode import enable_grad

    def leaf(a):  # (an argument already in a graph - an outer transform's - stays in it)
        return a if a.requires_grad else a.detach().requires_grad_(True)

    def wrapper(*args, **kwargs):
        nums = _as_tuple(argnums)
        tracked = any(t.requires_grad for t in _tree_leaves([list(args), dict(kwargs)]))
        args = list(args)
        for i in nums:  # an argument may be a tensor or a dict / list / tuple of them (a model's parameters)
            args[i] = _tree_map(leaf, args[i])
        depth = getattr(_nesting, "depth", 0)
        _nesting.depth = depth + 1
        try:
            with enable_grad():
                out = func(*args, **kwargs)
                value, aux = (out[0], out[1]) if has_aux else (out, None)
                xs = [x for i in nums for x in _tree_leaves(args[i])]
                gs = _grad(value, xs, create_graph=True, allow_unused=True)
        finally:
            _nesting.depth = depth
        gs = iter(g if g is not None else x * 0 for g, x in zip(gs, xs))
        trees = tuple(_tree_map(lambda _x: next(gs), args[i]) for i in nums)
        g = trees if isinstance(argnums, tuple) else trees[0]
        if depth == 0 and not tracked:  # outermost, on untracked inputs: plain results, as torch.func's
            g, value = _tree_map(_detached, g), _tree_map(_detached, value)
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of func's scalar output w.r.t. argument argnums (a tuple: several), as a function."""
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func, *primals, has_aux: bool = False):
    """(func(*primals), a function mapping a cotangent to the vector-Jacobian products w.r.t. each primal)."""
    from graphnn.autograd import grad as _grad
    from graphnn.core.grad_mode import enable_grad

    # (a primal already in a graph - an outer transform's variable - stays in it, so transforms nest: hessian)
    xs = [p if p.requires_grad else p.detach().requires_grad_(True) for p in primals]
    with enable_grad():
        out = func(*xs)
    value, aux = (out[0], out[1]) if has_aux else (out, None)

    def pullback(cotangent):
        with enable_grad():
            gs = _grad(value, xs, grad_outputs=cotangent, retain_graph=True, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else x * 0 for g, x in zip(gs, xs))

    return (value, pullback, aux) if has_aux else (value, pullback)


def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None):
    """The Jacobian of func w.r.t. argument argnums (output shape + input shape), by one vjp per output element;
    has_aux: func returns (output, aux), and the result is (Jacobian, aux)."""
    from graphnn.core.tensor import stack

    def wrapper(*args):
        nums = _as_tuple(argnums)
        aux = []

        def at(*xs):
            full = list(args)
            for i, x in zip(nums, xs):
                full[i] = x
            out = func(*full)
            if has_aux:
                out, extra = out
                aux.append(_tree_map(_detached, extra))
            return out

        out, pull = vjp(at, *[args[i] for i in nums])
        flat = out.reshape(-1)
        rows = []
        for k in range(flat.numel()):
            e = (flat.detach() * 0).clone()
            e[k] = 1.0
            rows.append(pull(e.reshape(out.shape)))
        jac = tuple(
            stack([r[j] for r in rows]).reshape(tuple(out.shape) + tuple(args[i].shape)) for j, i in enumerate(nums)
        )
        jac = jac if isinstance(argnums, tuple) else jac[0]
        return (jac, aux[0]) if has_aux else jac

    return wrapper


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The same Jacobian as jacrev (graphnn computes it in reverse mode)."""
    return jacrev(func, argnums, has_aux=has_aux)


def linearize(func, *primals):
    """(func(*primals), jvp_fn): jvp_fn(*tangents) is the Jacobian-vector product at primals."""
    value = func(*primals)
    return value.detach(), lambda *tangents: jvp(func, primals, tangents)[1]


def stack_module_state(models) -> tuple:
    """(params, buffers): each name's tensors of the same-structured models stacked along a new first dimension
    (parameters as new leaves that require grad), for vmap over an ensemble with functional_call."""
    from graphnn.core.tensor import stack

    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({type(m).__name__ for m in models}) != 1 or len({m.training for m in models}) != 1:
        raise RuntimeError(
            "stack_module_state: Expected all models to be of the same class and all in train or eval mode"
        )
    ps = [dict(m.named_parameters()) for m in models]
    bs = [dict(m.named_buffers()) for m in models]
    params = {n: stack([p[n].detach() for p in ps]).requires_grad_() for n in ps[0]}
    buffers = {n: stack([b[n] for b in bs]) for n in bs[0]}
    return params, buffers


def hessian(func, argnums=0):
    """The Hessian of func's scalar output w.r.t. argument argnums: the Jacobian of its gradient."""
    return jacfwd(jacrev(func, argnums), argnums)


def jvp(func, primals: tuple, tangents: tuple):
    """(func(*primals), the Jacobian-vector product J @ tangents), from the Jacobian (reverse mode, one
    vector-Jacobian product per output element: meant for small outputs)."""
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    value = func(*primals)
    jacs = jacrev(func, tuple(range(len(primals))))(*primals)
    jv = 0
    for jac, t in zip(jacs, tangents):
        flat = jac.reshape(tuple(value.shape) + (-1,))
        jv = jv + (flat * t.reshape(-1)).sum(-1)
    return value.detach(), jv.detach()


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """func mapped over dimension in_dims of its arguments (None: not mapped), results stacked at out_dims. An
    argument may be a tree (dicts, lists, tuples) of tensors: an int in_dim maps each of its tensors, a tree of
    in_dims of its shape maps them one by one (model ensembling: vmap(fmodel, in_dims=(0, None))(params, x));
    keyword arguments are passed unmapped, as PyTorch's."""
    from graphnn.core.tensor import Tensor

    def sizes_of(a, d, out: set) -> None:
        if d is None:
            return
        if isinstance(d, int):
            out.update(t.shape[d] for t in _tree_leaves(a) if isinstance(t, Tensor))
        elif isinstance(d, dict) and isinstance(a, dict):
            for k, v in a.items():
                sizes_of(v, d.get(k), out)
        elif isinstance(d, (tuple, list)) and isinstance(a, (tuple, list)) and len(d) == len(a):
            for x, dd in zip(a, d):
                sizes_of(x, dd, out)
        else:
            raise ValueError(f"vmap: in_dims {d!r} does not match the structure of its argument ({type(a).__name__})")

    def sliced(a, d, k: int):
        if d is None:
            return a
        if isinstance(d, int):
            return _tree_map(lambda t: t.select(d, k), a)
        if isinstance(d, dict):
            return type(a)((key, sliced(v, d.get(key), k)) for key, v in a.items())
        return type(a)(sliced(x, dd, k) for x, dd in zip(a, d))

    def wrapper(*args, **kwargs):
        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(
                f"vmap: in_dims has {len(dims)} entries for {len(args)} positional arguments (give one per argument)"
            )
        sizes: set = set()
        for a, d in zip(args, dims):
            sizes_of(a, d, sizes)
        if len(sizes) != 1:
            raise ValueError(
                f"vmap: expected all tensors to have the same size in the mapped dimension, got {sorted(sizes)}"
            )
        (n,) = sizes
        results = [func(*[sliced(a, d, k) for a, d in zip(args, dims)], **kwargs) for k in range(n)]
        first = results[0]
        if isinstance(first, tuple):
            od = out_dims if isinstance(out_dims, (tuple, list)) else (out_dims,) * len(first)
            return tuple(_stacked([r[j] for r in results], od[j]) for j in range(len(first)))
        return _stacked(results, out_dims)

    def _stacked(items: list, dim):
        """The results of every call stacked at dim (a tree of tensors: each leaf stacked)."""
        from graphnn.compiler.pytree import flatten, unflatten
        from graphnn.core.tensor import stack

        leaves = [[] for _ in items]
        spec = flatten(items[0], leaves[0])
        for r, out in zip(items[1:], leaves[1:]):
            flatten(r, out)
        return unflatten(spec, [stack([ls[j] for ls in leaves], dim) for j in range(len(leaves[0]))])

    return wrapper
