"""Variable-length sequences: PackedSequence, pack/pad helpers and recurrent layers on packed input (masked scans),
against PyTorch, eager and compiled; LSTM with proj_size."""

import numpy as np
import pytest

import graphnn
import graphnn.nn as nn
from graphnn.nn.utils import rnn as rnn_utils
from parity_util import check_recurrent, close, recorded_bounds

T, B, I, H = 5, 4, 3, 4
LENGTHS_SORTED = [5, 4, 2, 1]
LENGTHS_UNSORTED = [2, 5, 1, 4]

VARIANTS = [
    ("RNN", {}, True),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}, False),
    ("LSTM", {}, False),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}, False),
    ("LSTM", {"proj_size": 2, "bidirectional": True}, True),
    ("GRU", {"batch_first": True}, True),
    ("GRU", {"num_layers": 2, "bidirectional": True}, False),
]


def _ids(v):
    return "-".join([v[0]] + [f"{k}={val}" for k, val in v[1].items()] + [f"enforce_sorted={v[2]}"])


def _pair(torch, mode, kw):
    g = getattr(nn, mode)(I, H, **kw).double()
    t = getattr(torch.nn, mode)(I, H, **kw).double()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in g.state_dict().items()})
    return g, t


def _run(lib, model, mode, x, lengths, batch_first, enforce_sorted, h, c):
    """(packed output data, h_n, c_n or None, loss) of one layer call on x packed by lengths."""
    packed = lib.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    if mode == "LSTM":
        out, (hn, cn) = model(packed, (h, c))
    else:
        (out, hn), cn = model(packed, h), None
    assert type(out).__name__ == "PackedSequence"
    loss = (out.data * out.data).sum() + (hn * hn).sum() + (cn.sum() * 2.0 if cn is not None else 0.0)
    return out.data, hn, cn, loss


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_packed_input_matches_pytorch(torch, variant, compiled):
    """Packed output, h_n / c_n (each sequence's own last step, the reverse direction started at it, in the
    caller's batch order) and the gradients of the input, the initial state and every parameter agree with
    PyTorch within twice the rounding-error bound of graphnn's eager computation (its recorded graph)."""
    mode, kw, enforce_sorted = variant
    g, t = _pair(torch, mode, kw)
    bf = kw.get("batch_first", False)
    lengths = LENGTHS_SORTED if enforce_sorted else LENGTHS_UNSORTED
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if bf else (T, B, I))
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    h0 = rng.standard_normal((layers, B, kw.get("proj_size") or H))
    c0 = rng.standard_normal((layers, B, H))
    args = (lengths, bf, enforce_sorted)
    ins = [graphnn.tensor(a, requires_grad=True) for a in (x, h0, c0)]
    *eager, e_loss = _run(graphnn, g, mode, ins[0], *args, *ins[1:])
    bounds = recorded_bounds([o for o in eager if o is not None], e_loss)
    gx, gh, gc = (graphnn.tensor(a, requires_grad=True) for a in (x, h0, c0))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    g.zero_grad()
    got = _run(graphnn, graphnn.compile(g) if compiled else g, mode, gx, *args, gh, gc)
    want = _run(torch, t, mode, tx, *args, th, tc)
    assert tuple(got[0].shape) == tuple(want[0].shape) == (sum(lengths), want[0].shape[1])
    check_recurrent(mode, got, want, bounds, (gx, gh, gc), (tx, th, tc), ins)
    for (name, gp), (tname, tp) in zip(g.named_parameters(), t.named_parameters()):
        assert name == tname
        close(gp.grad, tp.grad, f"d {name}", bounds.grad_tol(gp))


def test_packed_argument_is_keyed_by_its_lengths():
    """A PackedSequence passed to a compiled module: its data is the graph input, its batch sizes and indices are
    constants of the trace, so equal lengths in a new pack reuse the trace and other lengths trace again."""
    m = nn.GRU(I, H)
    cm = graphnn.compile(m)
    x = graphnn.randn(T, B, I)
    pack = rnn_utils.pack_padded_sequence
    out1, h1 = cm(pack(x, LENGTHS_UNSORTED, enforce_sorted=False))
    out2, h2 = cm(pack(x, list(LENGTHS_UNSORTED), enforce_sorted=False))
    assert len(cm.cache) == 1
    close(out2.data, out1.data)
    close(h2, h1)
    e_out, e_h = m(pack(x, LENGTHS_UNSORTED, enforce_sorted=False))
    assert e_out.batch_sizes.tolist() == out1.batch_sizes.tolist() == [4, 3, 2, 2, 1]
    assert out1.sorted_indices.tolist() == [1, 3, 0, 2] and out1.unsorted_indices.tolist() == [2, 0, 3, 1]
    out3, _ = cm(pack(x, [3, 3, 2, 1]))
    assert len(cm.cache) == 2 and tuple(out3.data.shape) == (9, H)


def test_pack_inside_a_compiled_training_step(torch):
    """pack_padded_sequence with lengths given as a list inside graphnn.compile, an LSTM on the pack, the output
    padded again and backward() in the same compiled step: the gradients equal PyTorch's."""
    g, t = _pair(torch, "LSTM", {"batch_first": True, "num_layers": 2})
    x = np.random.default_rng(3).standard_normal((B, T, I))

    def step(lib, model, x):
        utils = lib.nn.utils.rnn
        out, (h, c) = model(utils.pack_padded_sequence(x, LENGTHS_UNSORTED, batch_first=True, enforce_sorted=False))
        padded, lengths = utils.pad_packed_sequence(out, batch_first=True, padding_value=-1.0, total_length=T + 1)
        loss = (padded * padded).sum() + h.sum() + c.sum()
        loss.backward()
        return loss, padded, lengths

    gx = graphnn.tensor(x, requires_grad=True)
    e_loss, e_padded, _ = step(graphnn, g, gx)
    bounds = recorded_bounds([e_padded], e_loss)
    g.zero_grad()
    gx.grad = None
    loss, padded, lengths = graphnn.compile(lambda x: step(graphnn, g, x))(gx)
    tx = torch.tensor(x, requires_grad=True)
    t_loss, t_padded, t_lengths = step(torch, t, tx)
    assert lengths.tolist() == t_lengths.tolist() == LENGTHS_UNSORTED
    close(padded, t_padded, "padded output", bounds.tol(0))
    close(gx.grad, tx.grad, "d input", bounds.grad_tol(gx))
    for (name, gp), tp in zip(g.named_parameters(), t.parameters()):
        close(gp.grad, tp.grad, f"d {name}", bounds.grad_tol(gp))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_and_pad_match_pytorch(torch, batch_first, enforce_sorted):
    """Packing and padding move values exactly: data, batch sizes, indices, padded batch and lengths as PyTorch's."""
    x = np.random.default_rng(1).standard_normal((B, T, 2) if batch_first else (T, B, 2))
    lengths = LENGTHS_SORTED if enforce_sorted else LENGTHS_UNSORTED
    packs = []
    for lib in (graphnn, torch):
        packs.append(
            lib.nn.utils.rnn.pack_padded_sequence(
                lib.tensor(x),
                lib.tensor(lengths, dtype=lib.float64),
                batch_first=batch_first,
                enforce_sorted=enforce_sorted,
            )
        )
    gp, tp = packs
    close(gp.data, tp.data)
    assert gp.batch_sizes.tolist() == tp.batch_sizes.tolist() and gp.batch_sizes.dtype == graphnn.int64
    for a, b in ((gp.sorted_indices, tp.sorted_indices), (gp.unsorted_indices, tp.unsorted_indices)):
        assert (a is None and b is None) or a.tolist() == b.tolist()
    for kw in ({}, {"padding_value": 7.0, "total_length": T + 2}):
        (g_pad, g_len), (t_pad, t_len) = (
            lib.nn.utils.rnn.pad_packed_sequence(p, batch_first=batch_first, **kw)
            for lib, p in ((graphnn, gp), (torch, tp))
        )
        close(g_pad, t_pad)
        assert g_len.tolist() == t_len.tolist()


def test_sequence_lists_match_pytorch(torch):
    """pack_sequence, unpack_sequence, unpad_sequence: the same sequences back, packs as PyTorch's."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((n, 2)) for n in LENGTHS_UNSORTED]
    g_seqs, t_seqs = [graphnn.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays]
    gp = rnn_utils.pack_sequence(g_seqs, enforce_sorted=False)
    tp = torch.nn.utils.rnn.pack_sequence(t_seqs, enforce_sorted=False)
    close(gp.data, tp.data)
    assert gp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    for a, s in zip(rnn_utils.unpack_sequence(gp), arrays):
        close(a, s)
    padded = rnn_utils.pad_sequence(g_seqs, batch_first=True)
    for a, s in zip(rnn_utils.unpad_sequence(padded, graphnn.tensor(LENGTHS_UNSORTED), batch_first=True), arrays):
        close(a, s)


def test_packed_sequence_object():
    """A namedtuple users unpack and pass around; .to() converts the data only; the older (data, batch_sizes) form."""
    p = rnn_utils.pack_sequence([graphnn.ones(3, 2), graphnn.ones(1, 2)])
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert isinstance(p, tuple) and p._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert data is p.data and batch_sizes.tolist() == [2, 1, 1] and sorted_indices is None and unsorted_indices is None
    d = p.to(graphnn.float64)
    assert d.data.dtype == graphnn.float64 and d.batch_sizes is p.batch_sizes and p.to("cpu") is p
    assert p.double().data.dtype == graphnn.float64 and not p.is_cuda
    q = rnn_utils.PackedSequence((p.data, p.batch_sizes))
    assert q.data is p.data and q.sorted_indices is None
    r = rnn_utils.PackedSequence(p.data, p.batch_sizes, graphnn.tensor([1, 0]))
    assert r.unsorted_indices.tolist() == [1, 0]
    assert rnn_utils.invert_permutation(graphnn.tensor([2, 0, 1])).tolist() == [1, 2, 0]


def _errors(lib, call):
    with pytest.raises(Exception) as info:
        call(lib)
    return info.type, str(info.value)


@pytest.mark.parametrize(
    "case",
    [
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(4, 3, 2), [2, 3, 1]),
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(4, 3, 2), [3, 1, 0]),
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(4, 3, 2), [3, 2]),
        lambda lib: lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(4, 3, 2), [[3, 2, 1]]),
        lambda lib: lib.nn.utils.rnn.pad_packed_sequence(
            lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(4, 3, 2), [4, 2, 1]), total_length=2
        ),
    ],
    ids=["unsorted", "zero_length", "batch_mismatch", "lengths_2d", "total_length"],
)
def test_errors_as_pytorch(torch, case):
    """Bad lengths raise PyTorch's exception type with its message."""
    assert _errors(graphnn, case) == _errors(torch, case)


def test_lengths_longer_than_the_input():
    """PyTorch packs past the end of the input here (reading other memory); graphnn refuses, naming the lengths."""
    with pytest.raises(RuntimeError, match="at most the padded sequence length 4 .* got a length of 5"):
        rnn_utils.pack_padded_sequence(graphnn.zeros(4, 3, 2), [5, 3, 1])
    with pytest.raises(RuntimeError, match="at most the padded sequence length 3"):
        rnn_utils.pack_padded_sequence(graphnn.zeros(2, 3, 2), [4, 1], batch_first=True, enforce_sorted=False)


def test_input_without_a_batch():
    with pytest.raises(IndexError, match=r"input of shape \(3,\) has no batch dimension"):
        rnn_utils.pack_padded_sequence(graphnn.zeros(3), [3])
    with pytest.raises(RuntimeError, match="Cannot pack empty tensors"):
        rnn_utils.pack_padded_sequence(graphnn.zeros(3, 0, 2), [])


def test_symbolic_lengths_inside_compile():
    """Lengths passed as a tensor argument of a compiled function are symbolic: a TraceError says what to do."""
    f = graphnn.compile(lambda x, n: rnn_utils.pack_padded_sequence(x, n), fullgraph=True)
    with pytest.raises(graphnn.TraceError, match="lengths is symbolic inside graphnn.compile.*list of ints"):
        f(graphnn.zeros(3, 2, 1), graphnn.tensor([3, 1]))


def test_packed_data_of_the_wrong_size():
    p = rnn_utils.pack_sequence([graphnn.ones(3, 2)])
    with pytest.raises(RuntimeError, match=r"LSTM: expected packed data of size \(\*, 3\), got \(3, 2\)"):
        nn.LSTM(3, 4)(p)


def test_lstm_projection_layout_and_errors(torch):
    """proj_size: PyTorch's parameter names, shapes and repr; invalid sizes as PyTorch reports them."""
    g, t = nn.LSTM(3, 5, 2, proj_size=2, bidirectional=True), torch.nn.LSTM(3, 5, 2, proj_size=2, bidirectional=True)
    assert [(n, tuple(p.shape)) for n, p in g.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in t.named_parameters()
    ]
    assert repr(g) == repr(t)
    out, (h, c) = g(graphnn.zeros(4, 1, 3))
    assert tuple(out.shape) == (4, 1, 4) and tuple(h.shape) == (4, 1, 2) and tuple(c.shape) == (4, 1, 5)
    for kw in ({"proj_size": 5}, {"proj_size": -1}):
        assert _errors(graphnn, lambda lib: lib.nn.LSTM(3, 5, **kw)) == _errors(
            torch, lambda lib: lib.nn.LSTM(3, 5, **kw)
        )
