"""Tensor operations composed of primitives, with PyTorch's names, results and grad_fn names: sorting (sort,
argsort, topk on the argsort primitive, values gathered with take_along), cumsum, einsum (transposes, reshapes,
sums and batched matmul), scatter / scatter_add (the scatter-add primitive take_along_grad), tril / triu, bmm /
baddbmm, unbind, and multinomial sampling (drawn with graphnn's generator: eagerly now, in compiled code at every
call, like every random op)."""

from __future__ import annotations

import numpy as np

from graphnn.core.complex_tensor import ComplexTensor
from graphnn.core.complex_tensor import einsum as complex_einsum
from graphnn.core import random as _random
from graphnn.core.dispatch import IndexRangeError, apply, located, relabel
from graphnn.core.dtypes import to_dtype


def _t():
    from graphnn.core import tensor

    return tensor


class ReturnType(tuple):
    """(values, indices) results (torch.return_types.<name>): a namedtuple for graphnn.compile's results."""

    _fields = ("values", "indices")
    _name = "return_type"

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self) -> str:
        return f"graphnn.return_types.{self._name}(\nvalues={self[0]!r},\nindices={self[1]!r})"


def return_type(name: str) -> type:
    return type(name, (ReturnType,), {"_name": name})


max_result, min_result = return_type("max"), return_type("min")  # (max(dim) / min(dim))
sort_result = return_type("sort")
topk_result = return_type("topk")


def _dim(x, dim: int, what: str) -> int:
    return _t().check_dim(dim, x.ndim, what, x)


# -- sorting -----------------------------------------------------------------------------------------------------
def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """Positions that sort x along dim (always stable: ties keep their order; NaN sorts above every number)."""
    if x.ndim == 0:
        return _t().zeros_like(x, dtype="int64")
    d = _dim(x, dim, "argsort")
    return apply("argsort", [x], {"axis": d, "descending": bool(descending)})


def sort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) of x sorted along dim; the values' gradient goes back to the elements they came from."""
    name = "SortBackward1" if stable else "SortBackward0"  # PyTorch's names of its two sort signatures
    if x.ndim == 0:
        return sort_result(relabel(x.clone(), name, [x]), _t().zeros_like(x, dtype="int64"))
    d = _dim(x, dim, "sort")
    idx = argsort(x, d, descending)
    return sort_result(apply("take_along", [x, idx], {"axis": d}, name=name), idx)


def msort(x):
    """x sorted along its first dimension (values only)."""
    return sort(x, 0)[0]


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002  (PyTorch's name)
    """(values, indices) of the k largest (largest=False: smallest) elements along dim, in sorted order."""
    d = _dim(x, dim, "topk") if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    if not 0 <= int(k) <= n:
        raise RuntimeError(located(f"topk({x._type}, k={k}, dim={dim}): selected index k out of range"))
    if x.ndim == 0:
        return topk_result(relabel(x.clone(), "TopkBackward0", [x]), _t().zeros_like(x, dtype="int64"))
    idx = apply("argsort", [x], {"axis": d, "descending": bool(largest), "k": int(k)})
    return topk_result(apply("take_along", [x, idx], {"axis": d}, name="TopkBackward0"), idx)


def cumsum(x, dim: int, dtype=None):
    """Running sums along dim (bool and int64 inputs sum as int64; dtype converts the input first)."""
    if dtype is not None:
        x = x.type_as_dtype(to_dtype(dtype))
    d = _dim(x, dim, "cumsum")
    return apply("cumsum", [x], {"axis": d}, name="CumsumBackward0")


# -- triangles, batched products, unbind -------------------------------------------------------------------------
def _triangle(x, diagonal: int, lower: bool):
    what = "tril" if lower else "triu"
    if x.ndim < 2:
        raise RuntimeError(located(f"{what}: input tensor must have at least 2 dimensions, got {x._type}"))
    r, c = x.shape[-2:]
    offset = np.arange(c)[None, :] - np.arange(r)[:, None]  # column - row
    keep = _t().Tensor._wrap(offset <= diagonal if lower else offset >= diagonal)
    zero = False if x.dtype_name == "bool" else 0
    return apply("select", [keep, x, zero], name="TrilBackward0" if lower else "TriuBackward0")


def tril(x, diagonal: int = 0):
    """x with the elements above the diagonal-th diagonal zeroed (batched over leading dimensions)."""
    return _triangle(x, int(diagonal), True)


def triu(x, diagonal: int = 0):
    """x with the elements below the diagonal-th diagonal zeroed (batched over leading dimensions)."""
    return _triangle(x, int(diagonal), False)


def bmm(a, b):
    """(B, n, m) @ (B, m, p) -> (B, n, p)."""
    a, b = _t().as_tensor(a), _t().as_tensor(b)
    if a.ndim != 3 or b.ndim != 3:
        bad = "batch1" if a.ndim != 3 else "batch2"
        raise RuntimeError(located(f"bmm({a._type}, {b._type}): {bad} must be a 3D tensor"))
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(
            located(
                f"bmm({a._type}, {b._type}): Expected size for first two dimensions of batch2 tensor to be: "
                f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}]."
            )
        )
    if a.dtype_name == b.dtype_name == "int64":
        return _t().matmul(a, b)  # (integer products: see tensor.matmul)
    return apply("matmul", [a, b], name="BmmBackward0")


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * bmm(batch1, batch2) (beta == 0: input is ignored, NaN in it too)."""
    prod = bmm(batch1, batch2)
    out = prod if alpha == 1 else prod * alpha
    if beta != 0:
        out = (input if beta == 1 else input * beta) + out
    elif tuple(np.broadcast_shapes(tuple(input.shape), tuple(out.shape))) != tuple(out.shape):
        raise RuntimeError(located(f"baddbmm: input {input._type} does not broadcast to the product {out._type}"))
    return relabel(out, "BaddbmmBackward0", [input, batch1, batch2])


def unbind(x, dim: int = 0) -> tuple:
    """The slices of x along dim (views), as a tuple."""
    d = _dim(x, dim, "unbind")
    lead = (slice(None),) * d
    return tuple(relabel(x[lead + (i,)], "UnbindBackward0", [x]) for i in range(x.shape[d]))


# -- scatter -----------------------------------------------------------------------------------------------------
def checked_index(x, dim: int, index, what: str):
    """(dim normalized, index) for gather / scatter along dim: an int64 index of x's rank whose entries lie in
    [0, size) (PyTorch's errors otherwise; checked now, or at every call for an input of compiled code, where the
    kernel checks the others)."""
    T = _t()
    d = _dim(x, dim, what)
    index = T.as_tensor(index)
    if index.dtype_name != "int64":
        raise RuntimeError(located(f"{what}(): Expected dtype int32/int64 for index, got {index.dtype_name}"))
    if index.ndim != x.ndim:
        raise RuntimeError(
            located(f"{what}(): Index tensor must have the same number of dimensions as input tensor ({x._type})")
        )
    check_index_range(index, x.shape[d], d, what, IndexRangeError)
    return d, index


def check_index_range(index, n: int, d: int, label: str, error=IndexRangeError) -> None:
    """Raise `error` naming `label`, the first index out of [0, n) and dimension d (when the values are known)."""
    from graphnn.compiler.tracer import check_values

    def check(a):
        bad = (a < 0) | (a >= n)
        if bad.any():
            raise error(
                located(f"{label}: index {int(a[bad].flat[0])} is out of bounds for dimension {d} with size {n}")
            )

    check_values(index, check)


def _placed(src, index, d: int, shape: tuple):
    """src (cut to the index's shape) added into zeros of `shape` at the indexed positions (a scatter-add)."""
    src = src[tuple(slice(0, s) for s in index.shape)] if tuple(src.shape) != tuple(index.shape) else src
    dt = src.dtype_name
    sf = src.type_as_dtype("int64") if dt == "bool" else src  # (int64 adds exactly)
    out = apply("take_along_grad", [sf, index], {"axis": d, "shape": tuple(shape)})
    return out.type_as_dtype(dt)


def zero_of(dtype: str):
    """The Python zero that keeps a select with a tensor of dtype in that dtype (0.0 would make bool or int64
    float32)."""
    return False if dtype == "bool" else 0.0 if dtype in ("float32", "float64") else 0


def last_writes(index, d: int, shape: tuple):
    """Whether each entry of index is the last along axis d to name its position in an array of `shape`: where an
    index repeats, PyTorch leaves the winner undefined, and its CPU loops (in order) leave the last write."""
    T = _t()
    n = index.shape[d]
    order = T.arange(n, dtype="float64").reshape(tuple(n if i == d else 1 for i in range(index.ndim)))
    order = apply("broadcast_to", [order], {"shape": tuple(index.shape)})
    base = apply("full", [], {"value": -1.0, "shape": tuple(shape), "dtype": "float64"})
    last = apply("scatter_extreme_along", [order, index, base], {"axis": d, "mode": "max"})
    return apply("take_along", [last, index], {"axis": d}) == order


def scatter(x, dim: int, index, src=None, value=None, reduce=None):
    """x with the positions `index` selects along dim replaced by src's elements (or by the number `value`);
    where an index repeats, the last write wins (PyTorch's CPU order). reduce='add' / 'multiply' adds / multiplies
    them into x's elements instead."""
    if src is None:
        src = value
    if reduce is not None:
        return _scatter_reduced(x, dim, index, src, reduce)
    d, index = checked_index(x, dim, index, "scatter")
    ones = apply("full", [], {"value": 1.0, "shape": tuple(index.shape), "dtype": "float32"})
    count = apply("take_along_grad", [ones, index], {"axis": d, "shape": tuple(x.shape)})
    if isinstance(src, _t().Tensor):
        src = src.type_as_dtype(x.dtype_name)
        src = src[tuple(slice(0, s) for s in index.shape)] if tuple(src.shape) != tuple(index.shape) else src
        src = apply("select", [last_writes(index, d, tuple(x.shape)), src, zero_of(src.dtype_name)])
        return apply("select", [count > 0, _placed(src, index, d, x.shape), x], name="ScatterBackward0")
    return apply("select", [count > 0, src, x], name="ScatterBackward1")


def _scatter_reduced(x, dim: int, index, src, reduce: str):
    """scatter with reduce='add' (src's elements added in) or 'multiply' (multiplied in); src a tensor or a number."""
    from graphnn.core.extra_api import scatter_reduce

    T = _t()
    if reduce not in ("add", "multiply"):
        raise RuntimeError(located("reduce argument must be either add or multiply."))
    d, index = checked_index(x, dim, index, "scatter")
    if not isinstance(src, T.Tensor):
        src = apply("full", [], {"value": src, "shape": tuple(index.shape), "dtype": x.dtype_name})
    if reduce == "add":
        return scatter_add(x, d, index, src)
    return scatter_reduce(x, d, index, src, "prod", include_self=True)


def scatter_add(x, dim: int, index, src):
    """x plus src's elements added at the positions `index` selects along dim (repeats add up)."""
    d, index = checked_index(x, dim, index, "scatter_add")
    src = _t().as_tensor(src).type_as_dtype(x.dtype_name)
    return relabel(x + _placed(src, index, d, x.shape), "ScatterAddBackward0", [x, src])


# -- einsum ------------------------------------------------------------------------------------------------------
def _einsum_error(equation: str, msg: str) -> RuntimeError:
    return RuntimeError(located(f"einsum('{equation}'): {msg}"))


def _labels(term: str, x, equation: str) -> list:
    """The labels of an operand's dimensions: letters, and ('...', -k) for the k-th ellipsis dimension from the end."""
    if term.count("...") > 1 or "." in term.replace("...", ""):
        raise _einsum_error(equation, f"invalid subscript {term!r}")
    letters = [c for c in term if c != "."]
    if any(not c.isalpha() for c in letters):
        raise _einsum_error(equation, f"invalid subscript {term!r}: subscripts are letters and '...'")
    if "..." not in term:
        if len(letters) != x.ndim:
            raise _einsum_error(
                equation, f"the number of subscripts in {term!r} ({len(letters)}) does not match {x._type}"
            )
        return letters
    k = x.ndim - len(letters)
    if k < 0:
        raise _einsum_error(equation, f"{term!r} has more subscripts than {x._type} has dimensions")
    i = term.index("...")
    before = [c for c in term[:i] if c != "."]
    after = [c for c in term[i + 3 :] if c != "."]
    return before + [("...", j - k) for j in range(k)] + after


def _diagonal(x, labels: list) -> tuple:
    """(x, labels) with every repeated label of one operand reduced to its diagonal."""
    T = _t()
    while len(set(map(str, labels))) != len(labels):
        seen = {}
        for j, lab in enumerate(labels):
            if lab in seen:
                i = seen[lab]
                break
            seen[lab] = j
        n = x.shape[i]
        if x.shape[j] != n:
            raise RuntimeError(located(f"einsum: subscript {lab} is repeated with sizes {n} and {x.shape[j]}"))
        rest = [d for d in range(x.ndim) if d not in (i, j)]
        y = T.reshape(x.permute(*rest, i, j), tuple(x.shape[d] for d in rest) + (n * n,))
        x = y[(slice(None),) * len(rest) + (slice(None, None, n + 1),)]
        labels = [labels[d] for d in rest] + [lab]
    return x, labels


def _sum_out(x, labels: list, keep) -> tuple:
    """x summed over the labels not in `keep`."""
    axes = [i for i, lab in enumerate(labels) if lab not in keep]
    if not axes:
        return x, labels
    return x.sum(tuple(axes)), [lab for lab in labels if lab in keep]


def _arrange(x, labels: list, order: list, sizes: dict):
    """x with its dimensions in `order` (labels it lacks become size-1 dimensions), expanded to `sizes` where asked."""
    T = _t()
    perm = [labels.index(lab) for lab in order if lab in labels]
    if perm != list(range(len(perm))):
        x = x.permute(*perm)
    shape = tuple(x.shape[perm.index(labels.index(lab))] if lab in labels else 1 for lab in order)
    if shape != tuple(x.shape):
        x = T.reshape(x, shape)
    want = tuple(sizes.get(lab, s) for lab, s in zip(order, shape))
    return T.broadcast_to(x, want) if want != shape else x


def _contract(a, la: list, b, lb: list, needed: set, sizes: dict) -> tuple:
    """a * b summed over the labels they share and no later term needs: a batched matmul for floats."""
    T = _t()
    batch = [lab for lab in la if lab in lb and lab in needed]
    inner = [lab for lab in la if lab in lb and lab not in needed]
    free_a = [lab for lab in la if lab not in lb]
    free_b = [lab for lab in lb if lab not in la]
    if a.dtype_name not in ("float32", "float64"):  # integers: exact products and sums
        order = batch + free_a + free_b + inner
        prod = _arrange(a, la, order, {}) * _arrange(b, lb, order, {})
        return _sum_out(prod, order, set(batch + free_a + free_b))
    common = {lab: sizes[lab] for lab in batch + inner}
    A = _arrange(a, la, batch + free_a + inner, common)
    B = _arrange(b, lb, batch + inner + free_b, common)
    nb = len(batch)
    bs = tuple(A.shape[:nb])
    sa, sb = tuple(A.shape[nb : nb + len(free_a)]), tuple(B.shape[nb + len(inner) :])
    k = int(np.prod([sizes[lab] for lab in inner], dtype=np.int64))
    A2 = T.reshape(A, bs + (int(np.prod(sa, dtype=np.int64)), k))
    B2 = T.reshape(B, tuple(B.shape[:nb]) + (k, int(np.prod(sb, dtype=np.int64))))
    out = A2 @ B2
    return T.reshape(out, tuple(out.shape[:nb]) + sa + sb), batch + free_a + free_b


def _sublist_equation(args: tuple) -> tuple:
    """einsum(op1, [0, 1], op2, [1, 2], [0, 2]) (PyTorch's sublist form: subscripts as integers 0-51, Ellipsis for
    '...') -> ('ab,bc->ac', (op1, op2))."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def term(sub) -> str:
        out = ""
        for s in sub:
            if s is Ellipsis:
                out += "..."
            elif isinstance(s, int) and 0 <= s < len(letters):
                out += letters[s]
            else:
                raise ValueError(f"einsum(): subscript in subscript list is not within the valid range [0, 52): {s}")
        return out

    pairs = len(args) // 2
    eq = ",".join(term(sub) for sub in args[1 : 2 * pairs : 2])
    if len(args) % 2:  # an output sublist follows the pairs
        eq += "->" + term(args[-1])
    ops = args[0 : 2 * pairs : 2]
    return eq, tuple(ops)


def einsum(equation, *operands):
    """Einstein summation: implicit ('ij,jk') and explicit ('ij,jk->ik') output, '...' for broadcast dimensions,
    repeated subscripts in one operand for diagonals and traces ('ii->i', 'ii'); also the sublist form
    einsum(op1, [0, 1], op2, [1, 2], [0, 2])."""
    T = _t()
    if not isinstance(equation, str):
        equation, operands = _sublist_equation((equation,) + operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if any(isinstance(x, ComplexTensor) for x in operands):
        return complex_einsum(equation, list(operands))
    ops = [T.as_tensor(x) for x in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        more = "more" if len(ops) > len(terms) else "fewer"
        raise _einsum_error(equation, f"{more} operands were provided than specified in the equation")
    labels = [_labels(t, x, equation) for t, x in zip(terms, ops)]
    ellipsis = sorted({lab for ls in labels for lab in ls if isinstance(lab, tuple)}, key=lambda lab: lab[1])
    if arrow:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise _einsum_error(equation, f"invalid output subscript {rhs!r}")
        i = rhs.find("...")
        letters = [c for c in rhs if c != "."]
        out = letters if i < 0 else [c for c in rhs[:i] if c != "."] + ellipsis + [c for c in rhs[i + 3 :]]
        if len(set(letters)) != len(letters):
            raise _einsum_error(equation, f"output subscript {rhs!r} repeats a subscript")
        for c in letters:
            if not any(c in ls for ls in labels):
                raise _einsum_error(equation, f"output subscript {c} does not appear in the equation for any input")
    else:
        counts: dict = {}
        for ls in labels:
            for lab in ls:
                if not isinstance(lab, tuple):
                    counts[lab] = counts.get(lab, 0) + 1
        out = ellipsis + sorted(c for c, n in counts.items() if n == 1)
    dts = sorted({x.dtype_name for x in ops})
    if len(dts) > 1:  # PyTorch does not promote einsum's operands
        raise _einsum_error(equation, f"operands of different dtypes: {', '.join(dts)} (convert them to one first)")
    sizes: dict = {}
    for x, ls in zip(ops, labels):
        for lab, n in zip(ls, x.shape):
            if sizes.get(lab, 1) != 1 and n != 1 and sizes[lab] != n:
                raise _einsum_error(
                    equation, f"subscript {lab} has size {n} for one operand and {sizes[lab]} for another"
                )
            sizes[lab] = max(sizes.get(lab, 1), n) if lab in sizes else n
    items = [_diagonal(x, ls) for x, ls in zip(ops, labels)]
    later = [set(out)]
    for _, ls in reversed(items[1:]):
        later.insert(0, later[0] | set(ls))
    cur, lc = items[0]
    cur, lc = _sum_out(cur, lc, later[0])
    for (x, lx), needed in zip(items[1:], later[1:]):
        x, lx = _sum_out(x, lx, needed | set(lc))
        cur, lc = _sum_out(cur, lc, needed | set(lx))
        cur, lc = _contract(cur, lc, x, lx, needed, sizes)
    cur, lc = _sum_out(cur, lc, set(out))
    return _arrange(cur, lc, out, {}) if lc != out else cur


# -- sampling ----------------------------------------------------------------------------------------------------
def count_below(seq, t, inclusive: bool = True):
    """For each t[..., j], how many entries of the sorted last axis of seq are <= it (< it without `inclusive`); seq
    is 1-d or has t's leading dimensions. A branchless binary search of log2(n) steps (O(S log n), not the (S, n)
    comparison matrix: 5120 draws among 50k words took 2 GB); NaN entries of seq sort last (never counted)."""
    T = _t()
    n = seq.shape[-1]

    def at(i):
        return seq[i] if seq.ndim == 1 else seq.gather(-1, i)

    def counted(x):
        return (x <= t) if inclusive else (x < t)

    base = T.zeros(tuple(t.shape), dtype="int64")
    length = n
    while length > 1:
        half = length // 2
        probe = base + half
        base = apply("select", [counted(at(probe)), probe, base])
        length -= half
    return base + counted(at(base)).long() if n else base


def multinomial(p, num_samples: int, replacement: bool = False, *, generator=None):
    """Category indices drawn from the rows of p (non-negative weights, not necessarily normalized). With
    replacement: inverse transform sampling of uniform draws against the running sums; without: the categories of
    the num_samples smallest E / p (E exponential draws), a weighted draw without replacement (Efraimidis and
    Spirakis). The draws come from graphnn's generator (graphnn.manual_seed): now in eager code, at every call in
    compiled code."""
    from graphnn.compiler.tracer import check_values
    from graphnn.core.grad_mode import no_grad

    T = _t()
    if p.ndim not in (1, 2):
        raise RuntimeError(located(f"multinomial({p._type}): prob_dist must be 1 or 2 dim"))
    if p.dtype_name not in ("float32", "float64"):
        raise RuntimeError(located(f"multinomial only supports floating-point dtypes for input, got {p.dtype_name}"))
    n, k = p.shape[-1], int(num_samples)
    if k <= 0:
        raise RuntimeError(located(f"multinomial: cannot sample n_sample <= 0 samples (got {k})"))
    if not replacement and k > n:
        raise RuntimeError(
            located("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        )

    def check(a):
        if not np.isfinite(a).all() or (a < 0).any():
            raise RuntimeError(located("multinomial: probability tensor contains either `inf`, `nan` or element < 0"))
        if (a.sum(-1) <= 0).any():
            raise RuntimeError(located("multinomial: invalid multinomial distribution (sum of probabilities <= 0)"))

    check_values(p, check)
    dt = p.dtype_name
    with no_grad():
        p = p.detach()
        if replacement:
            shape = tuple(p.shape[:-1]) + (k,)
            u = T.random_tensor(shape, dt, lambda: _random.generator(generator).random(shape).astype(dt))
            cdf = cumsum(p, -1)
            t = u * cdf[..., -1:]
            return apply("minimum", [count_below(cdf, t), n - 1])
        shape = tuple(p.shape)
        e = T.random_tensor(shape, dt, lambda: _random.generator(generator).standard_exponential(shape).astype(dt))
        # the k smallest keys (a heap of k per row); zero weights have infinite keys, drawn last as in PyTorch
        return apply("argsort", [e / p], {"axis": p.ndim - 1, "descending": False, "k": k})
