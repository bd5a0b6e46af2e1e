"""One compiled program for every batch size: graphs that differ only in one size share dynamic code.

`native_for(graph)` is asked before a graph is compiled. Graphs are grouped by their text with every number
erased. When a graph arrives whose group already holds a concrete graph of another size, the two are unified
(ir/unify.py) into one graph symbolic in N and that is compiled once (CompiledGraph with graph.meta["dynamic"]);
later graphs of the group that are this symbolic graph at their own N (checked integer by integer,
ir/unify.size_of) run its code when its guards admit their N. A graph the dynamic code cannot serve is compiled
as before (the caller does that when native_for returns None, then calls `compiled(graph)`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from graphnn.ir import config
from graphnn.ir.graph import Graph
from graphnn.ir.registry import get_op
from graphnn.ir.unify import batch_sizes, size_of, unify

from .runtime import CompiledGraph

MAX_GROUPS = 128  # graph structures remembered (least recently used dropped)
MAX_CODES = 8  # dynamic programs per structure (each valid for a range of N, or other sizes of the same op)
MAX_PARTNERS = 8  # graphs compiled for one size kept per structure, as partners for unification
STATS = {"dynamic_compiled": 0, "dynamic_reused": 0, "dynamic_failed": 0}

_NUMBER = re.compile(r"body<[0-9a-f]+>|-?\d+")  # (a scan body's key hashes its sizes too)
_lock = threading.Lock()
_last = threading.local()  # .key: (graph, its node count, _key(graph)) of the last graph asked for in this thread
_groups: OrderedDict = OrderedDict()  # erased text -> _Group


class _Group:
    def __init__(self):
        self.partners: OrderedDict = OrderedDict()  # the numbers of a graph compiled for one size -> the graph
        self.codes: list = []  # (dynamic CompiledGraph, its symbolic graph's text)
        self.failed: set = set()  # symbolic graph texts whose compile failed


def _count(stat: str) -> None:
    with _lock:
        STATS[stat] += 1


def _key(graph: Graph) -> tuple:
    """(the graph's text with every number erased: its group, the numbers erased), computed once per graph (native_for
    leaves it for compiled() on the same graph)."""
    known = getattr(_last, "key", None)
    if known is not None and known[0] is graph and known[1] == len(graph.nodes):
        return known[2]
    text = graph.name + "\n" + graph.to_text(anonymous=True)
    out = _NUMBER.sub("#", text), tuple(_NUMBER.findall(text))
    _last.key = (graph, len(graph.nodes), out)
    return out


def _partners(partners: list, numbers: tuple) -> list:
    """The graphs of the group that differ from one with these numbers in the fewest of them (the same op at another
    size of one dimension rather than with other weights: one-op graphs of every linear layer of a model share a
    structure), the newest first."""
    ranked = []
    for age, (nums, g) in enumerate(partners):
        differ = sum(a != b for a, b in zip(nums, numbers))
        if len(nums) == len(numbers) and differ:
            ranked.append((differ, -age, g))
    ranked.sort(key=lambda r: r[:2])
    return [g for differ, _, g in ranked if differ == ranked[0][0]]


def eligible(graph: Graph) -> bool:
    """Graphs dynamic code may serve: no host calls or collectives (their runtimes take static shapes)."""
    for n in graph.nodes:
        d = get_op(n.op)
        if d.host or d.communicates:
            return False
    return True


def native_for(graph: Graph) -> CompiledGraph | None:
    """A callable running graph with dynamic code (compiled now from the graph and an earlier one of another size,
    or compiled earlier), or None: compile graph for its own shapes and report it with compiled()."""
    if not config.get("GRAPHNN_DYNAMIC") or not eligible(graph):
        return None
    key, numbers = _key(graph)
    with _lock:
        group = _groups.get(key)
        if group is None:
            return None
        _groups.move_to_end(key)
        codes, partners = list(group.codes), list(group.partners.items())
    for code, _ in codes:
        n = size_of(code.symbolic_graph, graph)
        view = code.sized(n, graph) if n is not None else None
        if view is not None:
            _count("dynamic_reused")
            return view
    if len(codes) >= MAX_CODES:
        return None
    # (a partner whose size no dynamic program serves, such as a generation loop's first graph of length 1, gives way
    # to the next one)
    last = next((g for g in _partners(partners, numbers) if batch_sizes(g, graph) is not None), None)
    sym = unify(last, graph) if last is not None else None
    if sym is None:
        return None
    text, n = sym.to_text(anonymous=True), sym.meta["dynamic"]
    if text in group.failed:
        return None
    if any(t == text and code.guards.excluded(n) for code, t in codes):
        return None  # dynamic code for another representative would leave this size out as well
    try:
        code = CompiledGraph(sym)
    except Exception:  # noqa: BLE001 - what dynamic code cannot serve yet is compiled for its own shapes instead
        _count("dynamic_failed")
        with _lock:
            group.failed.add(text)
        return None
    _count("dynamic_compiled")
    with _lock:
        if code.guards.pinned():  # (a size's own code: the structure's sizes differ in more than the batch)
            group.failed.add(text)
        else:
            group.codes.append((code, text))
    # (None where the code excludes this very size: a decision taken as for a generic N, see ir/symbolic.py)
    return code.sized(n, graph)


def compiled(graph: Graph) -> None:
    """Note a graph just compiled for its own shapes (a partner for the next graph of its structure)."""
    if not config.get("GRAPHNN_DYNAMIC") or not eligible(graph):
        return
    key, numbers = _key(graph)
    with _lock:
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = _Group()
            while len(_groups) > MAX_GROUPS:
                _groups.popitem(last=False)
        _groups.move_to_end(key)
        group.partners[numbers] = graph
        group.partners.move_to_end(numbers)
        while len(group.partners) > MAX_PARTNERS:
            group.partners.popitem(last=False)


def clear() -> None:
    """Forget every group (tests)."""
    with _lock:
        _groups.clear()
