"""PyTorch's torch-level spellings (ATen argument orders, integer reductions, `*_copy` views, cells, settings,
eager control flow) give PyTorch's results."""

import numpy as np
import pytest

import graphnn


def to_np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def close(a, b, what, rtol=2e-5, atol=2e-6, equal_nan=False):
    """float32 results of the same few-term formulas: a few units in the last place apart."""
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=rtol, atol=atol, equal_nan=equal_nan, err_msg=what)


def _pair(torch, *shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    a = np.abs(a) + 0.1 if positive else a
    return graphnn.tensor(a), torch.tensor(a)


def test_losses_with_integer_reductions(torch):
    (gx, tx), (gy, ty), (gz, tz) = _pair(torch, 4, 5), _pair(torch, 4, 5, seed=1), _pair(torch, 4, 5, seed=2)
    gp, tp = _pair(torch, 4, 5, seed=3, positive=True)
    sign = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
    gs, ts = graphnn.tensor(sign), torch.tensor(sign)
    for red in (0, 1, 2):
        for name, g_args, t_args in (
            ("kl_div", (gx.log_softmax(1), gy.softmax(1)), (tx.log_softmax(1), ty.softmax(1))),
            ("binary_cross_entropy_with_logits", (gx, gp.clamp(0, 1), None, None), (tx, tp.clamp(0, 1), None, None)),
            ("cosine_embedding_loss", (gx, gy, gs, 0.1), (tx, ty, ts, 0.1)),
            ("hinge_embedding_loss", (gx, gs[:, None].expand(4, 5), 0.5), (tx, ts[:, None].expand(4, 5), 0.5)),
            ("margin_ranking_loss", (gx[:, 0], gy[:, 0], gs, 0.2), (tx[:, 0], ty[:, 0], ts, 0.2)),
            ("triplet_margin_loss", (gx, gy, gz, 1.0, 2.0, 1e-6, True), (tx, ty, tz, 1.0, 2.0, 1e-6, True)),
            ("poisson_nll_loss", (gx, gp, True, True, 1e-8), (tx, tp, True, True, 1e-8)),
        ):
            close(getattr(graphnn, name)(*g_args, red), getattr(torch, name)(*t_args, red), f"{name} {red}")


def test_aten_argument_orders(torch):
    (gx, tx), (gw, tw) = _pair(torch, 3, 4, 8, 8), _pair(torch, 6, 4, 3, 3, seed=1)
    (gb, tb), (gm, tm) = _pair(torch, 6, seed=2), _pair(torch, 4, seed=3)
    gv, tv = _pair(torch, 4, seed=4, positive=True)
    close(
        graphnn.convolution(gx, gw, gb, [2, 2], [1, 1], [1, 1], False, [0, 0], 1),
        torch.convolution(tx, tw, tb, [2, 2], [1, 1], [1, 1], False, [0, 0], 1),
        "convolution",
    )
    gwt, twt = _pair(torch, 4, 2, 3, 3, seed=5)
    close(
        graphnn.convolution(gx, gwt, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 2),
        torch.convolution(tx, twt, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 2),
        "transposed convolution",
    )
    close(
        graphnn.batch_norm(gx, gv, gm, gm.clone(), gv.clone(), False, 0.1, 1e-5, True),
        torch.batch_norm(tx, tv, tm, tm.clone(), tv.clone(), False, 0.1, 1e-5, True),
        "batch_norm",
    )
    close(
        graphnn.instance_norm(gx, gv, gm, None, None, True, 0.1, 1e-5, True),
        torch.instance_norm(tx, tv, tm, None, None, True, 0.1, 1e-5, True),
        "instance_norm",
    )
    close(graphnn.rms_norm(gx, [8], None, 1e-6), torch.rms_norm(tx, [8], None, 1e-6), "rms_norm")
    idx = np.array([[0, 2], [3, 1]])
    ge, te = _pair(torch, 5, 3)
    close(graphnn.embedding(ge, graphnn.tensor(idx)), torch.embedding(te, torch.tensor(idx)), "embedding")
    close(graphnn.constant_pad_nd(gx, [1, 2], 3.0), torch.constant_pad_nd(tx, [1, 2], 3.0), "constant_pad_nd")
    gv1, gi1 = graphnn.max_pool1d_with_indices(gx[0], 3)
    tv1, ti1 = torch.max_pool1d_with_indices(tx[0], 3)
    close(gv1, tv1, "max_pool1d values")
    assert to_np(gi1).tolist() == ti1.tolist()
    theta = np.array([[[1.0, 0.2, 0.1], [-0.1, 0.9, 0.0]]] * 3, np.float32)
    ggrid = graphnn.affine_grid_generator(graphnn.tensor(theta), [3, 4, 5, 6], False)
    tgrid = torch.affine_grid_generator(torch.tensor(theta), [3, 4, 5, 6], False)
    close(ggrid, tgrid, "affine_grid_generator")
    for mode, pad in ((0, 0), (1, 1), (0, 2)):
        close(
            graphnn.grid_sampler(gx, ggrid, mode, pad, False),
            torch.grid_sampler(tx, tgrid, mode, pad, False),
            f"grid_sampler {mode} {pad}",
        )


def test_cells_as_the_modules(torch):
    gx, tx = _pair(torch, 3, 5)
    for kind, gates in (("lstm", 4), ("gru", 3), ("rnn_tanh", 1), ("rnn_relu", 1)):
        (gwi, twi), (gwh, twh) = _pair(torch, gates * 4, 5, seed=1), _pair(torch, gates * 4, 4, seed=2)
        (gbi, tbi), (gbh, tbh) = _pair(torch, gates * 4, seed=3), _pair(torch, gates * 4, seed=4)
        (gh, th), (gc, tc) = _pair(torch, 3, 4, seed=5), _pair(torch, 3, 4, seed=6)
        ghx, thx = ((gh, gc), (th, tc)) if kind == "lstm" else (gh, th)
        g = getattr(graphnn, f"{kind}_cell")(gx, ghx, gwi, gwh, gbi, gbh)
        t = getattr(torch, f"{kind}_cell")(tx, thx, twi, twh, tbi, tbh)
        for a, b in zip(g if kind == "lstm" else [g], t if kind == "lstm" else [t]):
            close(a, b, kind)


def test_copies_splits_and_fills(torch):
    gx, tx = _pair(torch, 4, 6)
    for name, args in (
        ("transpose_copy", (0, 1)),
        ("narrow_copy", (1, 2, 3)),
        ("slice_copy", (1, 1, 5, 2)),
        ("unsqueeze_copy", (1,)),
        ("view_copy", ((6, 4),)),
        ("permute_copy", ((1, 0),)),
        ("select_copy", (0, 2)),
        ("diagonal_copy", ()),
        ("t_copy", ()),
        ("detach_copy", ()),
        ("expand_copy", ((2, 4, 6),)),
        ("unfold_copy", (1, 2, 2)),
        ("alias_copy", ()),
    ):
        g, t = getattr(graphnn, name)(gx, *args), getattr(torch, name)(tx, *args)
        close(g, t, name)
        g.add_(1)
        close(gx, tx, f"{name} leaves its input alone")
    for name, args in (
        ("split_copy", (2, 1)),
        ("unbind_copy", (0,)),
        ("split_with_sizes", ([1, 3],)),
        ("unsafe_split", (3, 1)),
        ("unsafe_chunk", (2,)),
    ):
        g, t = getattr(graphnn, name)(gx, *args), getattr(torch, name)(tx, *args)
        assert len(g) == len(t), name
        for a, b in zip(g, t):
            close(a, b, name)
    close(graphnn.fill(gx, 2.5), torch.fill(tx, 2.5), "fill")
    close(graphnn.frobenius_norm(gx, [1]), torch.frobenius_norm(tx, [1]), "frobenius_norm")
    close(graphnn.nuclear_norm(gx), torch.nuclear_norm(tx), "nuclear_norm")
    a = np.array([-1.0, 0.0, 2.0, np.nan], np.float32)
    close(graphnn.angle(graphnn.tensor(a)), torch.angle(torch.tensor(a)), "angle", equal_nan=True)
    m = np.array([[0, 1, 0], [2, 0, 3]], np.float32)
    assert (
        graphnn.nonzero_static(graphnn.tensor(m), size=4).tolist()
        == torch.nonzero_static(torch.tensor(m), size=4).tolist()
    )
    assert graphnn.empty_strided((2, 3), (3, 1)).shape == (2, 3)
    assert graphnn.get_device(gx) == torch.get_device(tx) == -1


def test_low_rank_factorizations_reconstruct(torch):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((20, 3)) @ rng.standard_normal((3, 8))).astype(np.float32)
    U, S, V = graphnn.svd_lowrank(graphnn.tensor(a), q=3)
    assert U.shape == (20, 3) and S.shape == (3,) and V.shape == (8, 3)
    close(U @ graphnn.diag(S) @ V.T, a, "svd_lowrank reconstructs a rank-3 matrix", atol=1e-4)
    tU, tS, tV = torch.pca_lowrank(torch.tensor(a), q=3)
    gU, gS, gV = graphnn.pca_lowrank(graphnn.tensor(a), q=3)
    close(gS, tS, "pca_lowrank singular values", rtol=1e-4, atol=1e-4)


def test_control_flow_and_settings(torch):
    x = graphnn.ones(3)
    assert graphnn.cond(x.sum() > 2, lambda t: t * 2, lambda t: t - 1, (x,)).tolist() == [2.0] * 3
    i, acc = graphnn.while_loop(lambda i, a: i < 5, lambda i, a: (i + 1, a * 2), (graphnn.tensor(0), x))
    assert int(i) == 5 and acc.tolist() == [32.0] * 3
    assert graphnn.sym_max(2, 5) == 5 and graphnn.sym_int(3.7) == 3 and graphnn.sym_not(False)
    assert graphnn.get_autocast_cpu_dtype() == graphnn.bfloat16 and not graphnn.is_autocast_cpu_enabled()
    with graphnn.autocast("cpu"):
        assert graphnn.is_autocast_cpu_enabled()
    graphnn.set_deterministic_debug_mode("warn")
    try:
        assert graphnn.get_deterministic_debug_mode() == 1 and graphnn.are_deterministic_algorithms_enabled()
    finally:
        graphnn.set_deterministic_debug_mode(0)
    assert graphnn.get_deterministic_debug_mode() == 0
    hist, edges = graphnn.histogramdd(graphnn.tensor([[0.0, 0.0], [1.0, 1.0], [0.2, 0.9]]), bins=[2, 2])
    thist, tedges = torch.histogramdd(torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.2, 0.9]]), bins=[2, 2])
    close(hist, thist, "histogramdd")
    assert len(edges) == len(tedges) == 2


def test_dropout_variants_keep_or_zero_whole_channels():
    graphnn.manual_seed(0)
    x = graphnn.ones(8, 16, 5)
    y = graphnn.feature_dropout(x, 0.5, True)
    per_channel = y.numpy()
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # a channel is kept or zeroed whole
    assert graphnn.feature_dropout(x, 0.5, False) is x
    z = x.clone()
    graphnn.dropout_(z, 0.5, True)
    assert set(np.unique(z.numpy())) <= {0.0, 2.0} and 0 < (z.numpy() == 0).mean() < 1
    with pytest.raises(ValueError, match="reduction"):
        graphnn.kl_div(x, x, 3)


def test_numpy_argument_names(torch):
    """axis= for dim= and keepdims= for keepdim=, on functions and Tensor methods, as PyTorch accepts them."""
    calls = [
        lambda L, x: L.sum(x, axis=1),
        lambda L, x: x.mean(axis=0),
        lambda L, x: L.cat([x, x], axis=1),
        lambda L, x: L.concatenate([x, x], axis=0),
        lambda L, x: x.max(axis=1).values,
        lambda L, x: x.std(axis=1, keepdims=True),
        lambda L, x: x.argmax(axis=1),
        lambda L, x: x[None].squeeze(axis=0),
        lambda L, x: x.sum(1, keepdims=True),
        lambda L, x: L.amax(x, axis=(0, 1), keepdims=True),
    ]
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    for call in calls:
        want = call(torch, torch.tensor(data)).numpy()
        got = call(graphnn, graphnn.tensor(data)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert got.dtype == want.dtype
    with pytest.raises(TypeError, match="alias"):
        graphnn.ones(2).sum(dim=0, axis=0)
