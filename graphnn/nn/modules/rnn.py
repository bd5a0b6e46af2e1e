"""Recurrent layers: RNN, LSTM, GRU (as IR scans over time, not unrolled) and their cells.

Gate order and parameter names follow PyTorch: LSTM gates (i, f, g, o), GRU gates (r, z, n),
weight_ih_l{k}[_reverse], weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k} (LSTM with proj_size: h is
projected to proj_size features); every parameter is initialised uniform in +-1/sqrt(hidden_size). The layers take
a PackedSequence too (variable-length sequences: a scan with a mask per step).
"""

from __future__ import annotations

import math
import numbers

from graphnn.compiler import tracer as _tracer
from graphnn.compiler.scan import scan
from graphnn.ir import config
from graphnn.core.tensor import Tensor, cat, empty, stack, zeros
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ..utils import packed_sequence as packing
from ..utils.packed_sequence import PackedSequence
from ._factory import factory_dtype
from .module import Module

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _linear(x, w, b):
    out = x.matmul(w.t())
    return out + b if b is not None else out


def rnn_step(mode: str, gi: Tensor, h, w_hh, b_hh, w_hr=None):
    """One time step given the input projection gi = x W_ih^T + b_ih. h is a tensor, or (h, c) for LSTM (whose
    new h is projected by w_hr when given)."""
    if mode == "LSTM":
        h, c = h
        gates = gi + _linear(h, w_hh, b_hh)
        H = c.shape[-1]
        i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))
        c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h2 = o.sigmoid() * c2.tanh()
        return (h2 if w_hr is None else h2.matmul(w_hr.t())), c2
    if mode == "GRU":
        gh = _linear(h, w_hh, b_hh)
        H = h.shape[-1]
        r = (gi[..., :H] + gh[..., :H]).sigmoid()
        z = (gi[..., H : 2 * H] + gh[..., H : 2 * H]).sigmoid()
        n = (gi[..., 2 * H :] + r * gh[..., 2 * H :]).tanh()
        return (1.0 - z) * n + z * h
    pre = gi + _linear(h, w_hh, b_hh)
    return pre.tanh() if mode == "RNN_TANH" else F.relu(pre)


def run_layers(mode: str, num_layers: int, dirs: int, x, states: tuple, mask, weights: list, dropout: float = 0.0):
    """Every layer and direction over the time-major batch x (T, B, input_size) from `states` ((h0,) or (h0, c0)),
    each a scan over time; weights[layer * dirs + d] = (w_ih, w_hh, b_ih, b_hh, w_hr). With a mask (T, B, 1) (the
    valid steps of variable-length sequences), a step where the mask is False carries the state unchanged. Dropout
    (training) applies between layers. Returns (output (T, B, dirs * H), (h_n,) or (h_n, c_n))."""
    is_lstm = mode == "LSTM"
    finals = [[] for _ in states]
    layer_in = x
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, w_hh, b_ih, b_hh, w_hr = weights[k]
            gi = _linear(layer_in, w_ih, b_ih)  # (T, B, gates): one matmul for all time steps
            init_state = (states[0][k], states[1][k]) if is_lstm else states[0][k]

            def body(carry, xs, w_hh=w_hh, b_hh=b_hh, w_hr=w_hr):
                g_t, m_t = xs if mask is not None else (xs, None)
                new = rnn_step(mode, g_t, carry, w_hh, b_hh, w_hr)
                if m_t is not None:  # past a sequence's end: the state stays
                    new = tuple(n.where(m_t, c) for n, c in zip(new, carry)) if is_lstm else new.where(m_t, carry)
                return new, (new[0] if is_lstm else new)

            # (the body is the same function of the same weights at every call: traced once per signature)
            key = (mode, mask is not None, id(w_hh), id(b_hh), id(w_hr))
            final, ys = scan(body, init_state, gi if mask is None else (gi, mask), reverse=bool(d), cache_key=key)
            outs.append(ys)
            for f, v in zip(finals, final if is_lstm else (final,)):
                f.append(v)
        layer_in = outs[0] if dirs == 1 else cat(outs, 2)
        if dropout and layer < num_layers - 1:
            layer_in = F.dropout(layer_in, dropout, True)
    return layer_in, tuple(stack(f, 0) for f in finals)


MAX_HOT_SHAPES = 16  # input shapes whose eager calls a recurrent layer counts (see RNNBase._hot)
_COMPILED_LAYERS: dict = {}  # (mode, layers, directions, bias, proj_size) -> graphnn.compile of run_layers


def _compiled_layers(mode: str, num_layers: int, dirs: int, bias: bool, proj_size: int):
    """run_layers compiled as a function of (x, *states, *weights) (each layer's and direction's w_ih, w_hh, then
    b_ih, b_hh with bias, then w_hr with a projection), shared by every layer of that configuration; called
    eagerly it records one call node whose gradient is the compiled backward."""
    key = (mode, num_layers, dirs, bias, proj_size)
    fn = _COMPILED_LAYERS.get(key)
    if fn is None:
        from graphnn.compiler.program import compile

        n_states = 2 if mode == "LSTM" else 1
        per = 2 + 2 * bias + bool(proj_size)

        def layers(x, *rest):
            states, flat = rest[:n_states], rest[n_states:]
            weights = []
            for k in range(num_layers * dirs):
                w = list(flat[k * per : (k + 1) * per])
                w_ih, w_hh = w[:2]
                b_ih, b_hh = w[2:4] if bias else (None, None)
                weights.append((w_ih, w_hh, b_ih, b_hh, w[-1] if proj_size else None))
            out, finals = run_layers(mode, num_layers, dirs, x, states, None, weights)
            return (out, *finals)

        fn = _COMPILED_LAYERS[key] = compile(layers, name=f"{mode.lower()}_layers", dynamic=False)
    return fn


class RNNBase(Module):
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dtype = factory_dtype(device, dtype, type(self).__name__)
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1]")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if hidden_size <= 0:
            raise ValueError(f"hidden_size must be greater than zero, got {hidden_size}")
        if num_layers <= 0:
            raise ValueError(f"num_layers must be greater than zero, got {num_layers}")
        if input_size < 0:
            raise ValueError(f"input_size must be non-negative, got {input_size}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.proj_size = proj_size
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        gate = GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else self._out_size() * dirs
                names = [("weight_ih", (gate, in_size)), ("weight_hh", (gate, self._out_size()))]
                if bias:
                    names += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size:
                    names.append(("weight_hr", (proj_size, hidden_size)))
                for n, shape in names:
                    setattr(self, n + suffix, Parameter(empty(*shape, dtype=dtype)))
                    self._flat_weights_names.append(n + suffix)
        self.reset_parameters()

    def _out_size(self) -> int:
        """Features of h: proj_size when projecting, else hidden_size."""
        return self.proj_size or self.hidden_size

    @property
    def all_weights(self) -> list:
        """The parameters per layer and direction, [[weight_ih, weight_hh, bias_ih, bias_hh(, weight_hr)], ...]."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i : i + per]] for i in range(0, len(names), per)]

    def flatten_parameters(self) -> None:
        """Nothing to do: graphnn's recurrences read the weights where they are (PyTorch packs them for cuDNN)."""

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _params(self, layer: int, d: int):
        s = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + s) if self.bias or "weight" in n else None  # noqa: E731
        w_hr = get("weight_hr") if self.proj_size else None
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), w_hr

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise RuntimeError(
                f"{type(self).__name__}: expected input of size (*, {self.input_size}) with 2 or 3 "
                f"dimensions, got {tuple(input.shape)}"
            )
        if x.shape[0] == 0:  # (as PyTorch: a recurrence needs at least one step)
            raise RuntimeError(
                f"{type(self).__name__}: expected sequence length to be larger than 0, got input of "
                f"shape {tuple(input.shape)}"
                + (" (batch_first: length is dim 1)" if self.batch_first and not unbatched else "")
            )
        if hx is not None and unbatched:
            hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        states = self._initial_state(x, hx)
        hot = self._hot(x, states)
        if hot is None:
            output, state = self._layers(x, states, None)
        else:
            output, *finals = hot(x, *states, *(getattr(self, n) for n in self._flat_weights_names))
            state = tuple(finals)
        if unbatched:
            output = output.squeeze(1)
            state = tuple(s.squeeze(1) for s in state)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (state if self.mode == "LSTM" else state[0])

    def _forward_packed(self, input: PackedSequence, hx=None):
        """A PackedSequence through the layers: its padded batch runs with a per-step mask (the state is carried
        unchanged past each sequence's end); the output is packed, h_n/c_n in the original batch order."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if data.ndim != 2 or data.shape[1] != self.input_size:
            raise RuntimeError(
                f"{type(self).__name__}: expected packed data of size (*, {self.input_size}), got {tuple(data.shape)}"
            )
        valid, _ = packing.layout(batch_sizes)
        x = packing.unpack_rows(data, batch_sizes)
        if hx is not None and sorted_indices is not None:  # the caller's order -> the sorted order of the batch
            hx = (
                tuple(h.index_select(1, sorted_indices) for h in hx)
                if self.mode == "LSTM"
                else hx.index_select(1, sorted_indices)
            )
        mask = Tensor._wrap(valid[:, :, None])
        output, state = self._layers(x, self._initial_state(x, hx), mask)
        if unsorted_indices is not None:
            state = tuple(s.index_select(1, unsorted_indices) for s in state)
        output = PackedSequence(packing.pack_rows(output, batch_sizes), batch_sizes, sorted_indices, unsorted_indices)
        return output, (state if self.mode == "LSTM" else state[0])

    def _initial_state(self, x: Tensor, hx) -> tuple:
        """(h0,) or (h0, c0) for a time-major batch x, zeros when hx is None; their shapes checked."""
        dirs = 2 if self.bidirectional else 1
        lead = (self.num_layers * dirs, x.shape[1])
        shapes = [(*lead, self._out_size())] + ([(*lead, self.hidden_size)] if self.mode == "LSTM" else [])
        if hx is None:
            return tuple(zeros(*shape, dtype=x.dtype_name) for shape in shapes)
        states = tuple(hx) if self.mode == "LSTM" else (hx,)
        for s, shape in zip(states, shapes):
            if tuple(s.shape) != shape:
                raise RuntimeError(f"{type(self).__name__}: expected hidden size {shape}, got {tuple(s.shape)}")
        return states

    def _layers(self, x: Tensor, states: tuple, mask) -> tuple:
        """Every layer and direction over the time-major batch x (T, B, input_size) from `states` ((h0,) or
        (h0, c0)); see run_layers."""
        dirs = 2 if self.bidirectional else 1
        weights = [self._params(layer, d) for layer in range(self.num_layers) for d in range(dirs)]
        dropout = self.dropout if self.training else 0.0
        return run_layers(self.mode, self.num_layers, dirs, x, states, mask, weights, dropout)

    def _hot(self, x: Tensor, states: tuple):
        """The layers as one compiled function of (x, states, weights) once this module has run eagerly
        GRAPHNN_HOT_CELLS times with x's shape (PyTorch runs a recurrent layer as one fused kernel, not op by op),
        else None: inside graphnn.compile (the layers are part of the caller's graph), with dropout between
        layers, or while the shape is new (a loop over sequences of many lengths stays eager: no compile per
        length)."""
        hot = config.get("GRAPHNN_HOT_CELLS")
        if not hot or _tracer.current() is not None or (self.dropout and self.training and self.num_layers > 1):
            return None
        calls = self.__dict__.setdefault("_calls_by_shape", {})
        sig = (tuple(x.shape), x.dtype_name)
        n = calls.get(sig, 0)
        if n < hot:
            if n or len(calls) < MAX_HOT_SHAPES:
                calls[sig] = n + 1
            return None
        return _compiled_layers(self.mode, self.num_layers, 2 if self.bidirectional else 1, self.bias, self.proj_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )


class LSTM(RNNBase):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )


class GRU(RNNBase):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0, device, dtype
        )


_COMPILED_STEPS: dict = {}  # mode -> graphnn.compile of one cell step (traced once per signature)


def _cell_step(mode: str, x, hx, w_ih, w_hh, b_ih, b_hh):
    """One step of a cell: the input projection, then rnn_step."""
    return rnn_step(mode, _linear(x, w_ih, b_ih), hx, w_hh, b_hh)


def _compiled_step(mode: str):
    """One cell step as a compiled function of (x, hx, weights): called eagerly, it records one call node whose
    gradient is the compiled backward, as any graphnn.compile function does."""
    fn = _COMPILED_STEPS.get(mode)
    if fn is None:
        from graphnn.compiler.program import compile

        def cell_step(x, hx, w_ih, w_hh, b_ih, b_hh):
            return _cell_step(mode, x, hx, w_ih, w_hh, b_ih, b_hh)

        fn = _COMPILED_STEPS[mode] = compile(cell_step, name=f"{mode.lower()}_cell")
    return fn


class RNNCellBase(Module):
    """A cell runs eagerly op by op for its first GRAPHNN_HOT_CELLS calls; after that (a time loop: PyTorch runs
    a cell as one fused kernel) its steps run compiled, one native call forward and one backward per step."""

    _eager_calls = 0

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        dtype = factory_dtype(device, dtype, type(self).__name__)
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        gate = GATES[mode] * hidden_size
        self.weight_ih = Parameter(empty(gate, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(gate, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gate, dtype=dtype))
            self.bias_hh = Parameter(empty(gate, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def forward(self, input, hx=None):
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise RuntimeError(
                f"{type(self).__name__}: expected input of size (*, {self.input_size}), got {tuple(input.shape)}"
            )
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            hx = (
                (zeros(*shape, dtype=x.dtype_name), zeros(*shape, dtype=x.dtype_name))
                if self.mode == "LSTM"
                else zeros(*shape, dtype=x.dtype_name)
            )
        elif unbatched:
            hx = tuple(h.unsqueeze(0) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(0)
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        hot = config.get("GRAPHNN_HOT_CELLS")
        if _tracer.current() is not None:  # inside graphnn.compile: part of the caller's graph
            out = _cell_step(self.mode, x, hx, *weights)
        elif hot and self._eager_calls >= hot:
            out = _compiled_step(self.mode)(x, hx, *weights)
        else:
            self._eager_calls += 1
            out = _cell_step(self.mode, x, hx, *weights)
        if unbatched:
            out = tuple(o.squeeze(0) for o in out) if self.mode == "LSTM" else out.squeeze(0)
        return out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s


class RNNCell(RNNCellBase):
    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", device=None, dtype=None
    ):
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, bias, device, dtype)


class LSTMCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)


class GRUCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)
