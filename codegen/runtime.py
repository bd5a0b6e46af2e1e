"""Compiled graphs: a native entry point plus the buffers it needs, callable with NumPy arrays."""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from graphnn.ir.graph import Graph
from graphnn.ir.interpreter import check_input

from .jit import compile_ir
from .module import build_module

_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class CompiledGraph:
    """Native code for one graph. Call with one array per graph input; returns one array per output.

    Outputs in graph.meta["writeback"] are not returned: they are written into their input's buffer.
    """

    def __init__(self, graph: Graph, name: str = "graphnn_entry"):
        self.graph = graph
        self.ir_text, self.layout, self.plan = build_module(graph, name)
        self._fn = _ENTRY(compile_ir(self.ir_text, [name])[name])
        self._consts = [np.ascontiguousarray(c) for c in self.layout.constants]
        self._local = threading.local()
        self.returned = [j for j in range(len(graph.outputs)) if j not in self.layout.writeback]

    def _scratch(self):
        """Per-thread arena and write-back buffers, allocated once and reused across calls."""
        loc = self._local
        if not hasattr(loc, "arena"):
            loc.arena = np.empty(max(64, self.layout.arena_bytes) // 8 + 8, np.float64)
            loc.wb = {j: np.empty(self.graph.outputs[j].shape, self.graph.outputs[j].dtype) for j in self.layout.writeback}
            loc.slots = (ctypes.c_void_p * (self.layout.n_inputs + self.layout.n_outputs + len(self._consts) + 1))()
            base = self.layout.n_inputs + self.layout.n_outputs
            for i, c in enumerate(self._consts):
                loc.slots[base + i] = c.ctypes.data
            loc.slots[base + len(self._consts)] = loc.arena.ctypes.data
            for j, a in loc.wb.items():
                loc.slots[self.layout.n_inputs + j] = a.ctypes.data
        return loc

    def __call__(self, inputs: list) -> list:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"compiled graph takes {len(g.inputs)} inputs, got {len(inputs)}")
        loc = self._scratch()
        keep = []
        wb_targets = set(self.layout.writeback.values())
        for i, (v, a) in enumerate(zip(g.inputs, inputs)):
            a = check_input(v, a)
            if not a.flags.c_contiguous:
                if i in wb_targets:
                    raise ValueError(f"input {v.name} is updated in place and must be C-contiguous")
                a = np.ascontiguousarray(a)
            keep.append(a)
            loc.slots[i] = a.ctypes.data
        outs: list = [None] * len(g.outputs)
        for j, slot in enumerate(self.layout.output_slots):
            if isinstance(slot, int) and j not in self.layout.writeback:
                outs[j] = np.empty(g.outputs[j].shape, g.outputs[j].dtype)
                loc.slots[slot] = outs[j].ctypes.data
        self._fn(ctypes.addressof(loc.slots))
        for j, slot in enumerate(self.layout.output_slots):
            if isinstance(slot, tuple):
                kind, src = slot
                outs[j] = keep[src].copy() if kind == "input" else outs[src].copy()
        return [outs[j] for j in self.returned]
