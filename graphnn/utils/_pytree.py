"""torch.utils._pytree's common functions: nested lists, tuples, dicts, namedtuples and OrderedDicts as trees whose
leaves are everything else (None is a node without children, as in PyTorch); types registered with
register_pytree_node are nodes too."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

_NODES: dict = {}  # type -> (flatten: obj -> (children, context), unflatten: (children, context) -> obj)


@dataclass
class TreeSpec:
    type: object
    context: object
    children_specs: list = field(default_factory=list)

    @property
    def num_leaves(self) -> int:
        return 1 if self.type is None else sum(c.num_leaves for c in self.children_specs)

    def is_leaf(self) -> bool:
        return self.type is None


LeafSpec = lambda: TreeSpec(None, None, [])  # noqa: E731  (torch's LeafSpec())


def register_pytree_node(cls, flatten_fn, unflatten_fn, *, serialized_type_name=None, **_ignored) -> None:
    """cls is a node: flatten_fn(obj) -> (children, context), unflatten_fn(children, context) -> obj."""
    _NODES[cls] = (flatten_fn, unflatten_fn)


def _is_namedtuple(cls) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _node(obj):
    """(flatten, unflatten) for obj's type, or None for a leaf."""
    cls = type(obj)
    if cls in _NODES:
        return _NODES[cls]
    if obj is None:
        return lambda o: ([], None), lambda ch, ctx: None
    if cls in (list, tuple):
        return lambda o: (list(o), None), lambda ch, ctx, cls=cls: cls(ch)
    if _is_namedtuple(cls):
        return lambda o: (list(o), None), lambda ch, ctx, cls=cls: cls(*ch)
    if cls in (dict, OrderedDict):
        return lambda o: (list(o.values()), list(o.keys())), lambda ch, ctx, cls=cls: cls(zip(ctx, ch))
    return None


def tree_flatten(tree, is_leaf=None) -> tuple:
    """(leaves in order, the TreeSpec to rebuild the tree with tree_unflatten)."""
    leaves: list = []

    def walk(x):
        node = None if is_leaf is not None and is_leaf(x) else _node(x)
        if node is None:
            leaves.append(x)
            return TreeSpec(None, None, [])
        children, context = node[0](x)
        return TreeSpec(type(x), context, [walk(c) for c in children])

    return leaves, walk(tree)


def tree_unflatten(leaves, spec: TreeSpec):
    it = iter(leaves)

    def build(s):
        if s.type is None:
            return next(it)
        children = [build(c) for c in s.children_specs]
        if s.type in _NODES:
            return _NODES[s.type][1](children, s.context)
        if s.type is type(None):
            return None
        if s.type in (dict, OrderedDict):
            return s.type(zip(s.context, children))
        return s.type(*children) if _is_namedtuple(s.type) else s.type(children)

    return build(spec)


def tree_leaves(tree, is_leaf=None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None) -> TreeSpec:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(fn, tree, *rests, is_leaf=None):
    """The tree with every leaf x replaced by fn(x, *the same leaf of each of `rests`)."""
    leaves, spec = tree_flatten(tree, is_leaf)
    others = [tree_flatten(r, is_leaf)[0] for r in rests]
    return tree_unflatten([fn(x, *(o[i] for o in others)) for i, x in enumerate(leaves)], spec)


def tree_map_only(cls, fn, tree, is_leaf=None):
    """tree_map applying fn to the leaves of type cls only."""
    return tree_map(lambda x: fn(x) if isinstance(x, cls) else x, tree, is_leaf=is_leaf)


def tree_all(pred, tree, is_leaf=None) -> bool:
    return all(pred(x) for x in tree_leaves(tree, is_leaf))


def tree_any(pred, tree, is_leaf=None) -> bool:
    return any(pred(x) for x in tree_leaves(tree, is_leaf))
