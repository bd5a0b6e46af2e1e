"""Where a compiled graph's buffers live: the slot array its function reads (SlotLayout) and the record the runtime
and the compile cache keep of it (Layout)."""

from __future__ import annotations

from dataclasses import dataclass

from graphnn.ir.graph import Graph
from graphnn.ir.registry import family
from graphnn.ir.symbolic import Sym


@dataclass
class Layout:
    """Where each buffer of a compiled graph lives."""

    n_inputs: int
    n_outputs: int
    constants: list  # ndarray per constant slot (empty when constants are module globals)
    arena_bytes: int  # a Sym (ir/symbolic.py) for a graph with dynamic shapes
    output_slots: list  # per graph output: its slot, or ("dup", j) / ("input", i) when copied after the call
    writeback: dict  # output position -> input position
    kernels: list = None  # kernel names in call order (indexes of the profile counters)
    parallel: bool = False  # does any kernel run split over the worker pool?
    aligned: list = None  # output positions whose buffers the code assumes 64-byte aligned (streaming stores)
    errors: list = None  # messages of the error codes a call can report (code i + 1 is errors[i])
    guards: list = None  # a dynamic graph's: the Guards (as JSON) on N under which its code is valid

    def to_json(self) -> dict:
        """Everything but the constants (they come from the graph), for the compile cache."""
        return {
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "arena_bytes": list(self.arena_bytes.coefs) if isinstance(self.arena_bytes, Sym) else self.arena_bytes,
            "output_slots": [s if isinstance(s, int) else list(s) for s in self.output_slots],
            "writeback": {str(k): v for k, v in self.writeback.items()},
            "kernels": self.kernels or [],
            "parallel": self.parallel,
            "aligned": sorted(self.aligned or []),
            "errors": list(self.errors or []),
            "guards": self.guards,
        }

    @classmethod
    def from_json(cls, d: dict, graph: Graph) -> "Layout":
        """The Layout of a compile-cache record, checked against the graph it is for; ValueError (or KeyError,
        TypeError) when it does not fit, so the record is treated as a damaged cache entry."""
        n_in, n_out = len(graph.inputs), len(graph.outputs)

        def index(v, n: int) -> bool:
            return type(v) is int and 0 <= v < n

        def slot_fits(s) -> bool:
            if type(s) is int:
                return n_in <= s < n_in + n_out
            return len(s) == 2 and (s[0] == "input" and index(s[1], n_in) or s[0] == "dup" and index(s[1], n_out))

        slots = [s if type(s) is int else tuple(s) for s in d["output_slots"]]
        wb = {int(k): v for k, v in d["writeback"].items()}
        kernels, parallel, arena, aligned, errors, guards = (
            d["kernels"],
            d["parallel"],
            d["arena_bytes"],
            d["aligned"],
            d["errors"],
            d.get("guards"),
        )
        rep = graph.meta.get("dynamic")
        if rep is not None and isinstance(arena, list) and all(type(c) is int for c in arena):
            arena = Sym(tuple(arena), rep)
        if (rep is None) != (guards is None):
            raise ValueError("cached layout does not fit the graph")
        checks = (
            d["n_inputs"] == n_in and d["n_outputs"] == n_out and len(slots) == n_out,
            all(slot_fits(s) for s in slots),
            all(index(k, n_out) and index(v, n_in) for k, v in wb.items()),
            (type(arena) is int and arena >= 0 or isinstance(arena, Sym)) and isinstance(parallel, bool),
            isinstance(kernels, list) and all(isinstance(k, str) for k in kernels),
            isinstance(aligned, list) and all(index(j, n_out) for j in aligned),
            isinstance(errors, list) and all(isinstance(e, str) for e in errors),
        )
        if not all(checks):
            raise ValueError("cached layout does not fit the graph")
        consts = [n.attrs["value"] for n in graph.nodes if family(n) == "constant"]
        return cls(n_in, n_out, consts, arena, slots, wb, kernels, parallel, aligned, errors, guards)


class SlotLayout:
    """Where a graph function finds its buffers: slots [inputs, outputs, constants, arena, status pointer].

    An output that is an input or another output is copied after the call (output_slots: ("input", i) or
    ("dup", j)); constants are slots filled by the runtime, or module globals when `globals_in` (a ModuleBuilder)
    is given (scan bodies and exports, whose slot arrays hold only inputs, outputs and the arena)."""

    def __init__(self, graph: Graph, globals_in=None):
        n_in, n_out = self.n_in, self.n_out = len(graph.inputs), len(graph.outputs)
        self.slot_of: dict = {v.id: i for i, v in enumerate(graph.inputs)}
        self.output_slots = []
        for j, v in enumerate(graph.outputs):
            if v.id in self.slot_of and self.slot_of[v.id] < n_in:
                self.output_slots.append(("input", self.slot_of[v.id]))
            elif v.id in self.slot_of:
                self.output_slots.append(("dup", self.slot_of[v.id] - n_in))
            else:
                self.slot_of[v.id] = n_in + j
                self.output_slots.append(n_in + j)
        self.constants, self.global_of, self.const_outputs = [], {}, []
        for n in graph.nodes:
            if family(n) != "constant":
                continue
            v = n.outputs[0]
            if globals_in is not None:
                gv = globals_in.global_constant(n.attrs["value"])
                if v.id in self.slot_of:
                    self.const_outputs.append((v.id, gv))
                else:
                    self.global_of[v.id] = gv
                continue
            if v.id in self.slot_of:  # a graph output: no kernel writes it, so copy the literal in
                self.const_outputs.append((v.id, n_in + n_out + len(self.constants)))
            else:
                self.slot_of[v.id] = n_in + n_out + len(self.constants)
            self.constants.append(n.attrs["value"])
        self.arena_slot = n_in + n_out + len(self.constants)
        self.status_slot = self.arena_slot + 1  # pointer to the call's status words [error code, offending value]

    def is_output(self, slot: int) -> bool:
        return self.n_in <= slot < self.n_in + self.n_out
