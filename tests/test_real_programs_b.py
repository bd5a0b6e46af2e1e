"""Six more well-known PyTorch programs (tests/real_programs_b.py: minGPT, a vision transformer, a ResNet with
checkpoints, REINFORCE and actor-critic, seq2seq with attention, the char-RNN classifier) run with graphnn in place
of torch and give PyTorch's results, eagerly and with the program's training-step function under graphnn.compile.

The harness is test_classic_programs.py's: PyTorch's models take graphnn's initial weights, PyTorch's random draws
(dropout, DataLoader seeds; here also torch.multinomial, which Categorical.sample calls, and RandomSampler's
indices) are replaced by draws from a NumPy generator with graphnn's formulas, and values computed n steps into
training may differ by n R roundings, R counted on the IR of one eager forward and backward pass (probe_roundings)
plus the update's.
"""

from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import pytest

import graphnn
import real_programs_b as rp
from graphnn.ir.roundoff import steps
from parity_util import close, steps_tolerance, to_np
from test_classic_programs import (
    MODES,
    UPDATE_ROUNDINGS,
    adam_step_bound,
    compare_series,
    compare_state,
    compile_for,
    noise_gradients,
    pair_models,
    probe_roundings,
    same_noise,
)

ADAMW_ROUNDINGS = UPDATE_ROUNDINGS["adam"] + 2  # the decoupled weight decay: a product and a difference


@contextlib.contextmanager
def same_draws(torch, seed: int):
    """same_noise, and PyTorch's torch.multinomial (with replacement) and RandomSampler drawing as graphnn's do."""
    with same_noise(torch, seed) as rng:
        saved_multinomial, sampler = torch.multinomial, torch.utils.data.RandomSampler
        saved_iter = sampler.__iter__

        def multinomial(p, num_samples, replacement=False, *, generator=None):
            assert replacement, "only draws with replacement are emulated"
            a = to_np(p)
            u = rng.random(a.shape[:-1] + (num_samples,)).astype(a.dtype)
            cdf = np.cumsum(a, -1)
            idx = (cdf[..., None, :] <= (u * cdf[..., -1:])[..., None]).sum(-1)
            return torch.from_numpy(np.minimum(idx, a.shape[-1] - 1).astype(np.int64))

        def iterate(self):
            r = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
            n = len(self.data_source)
            if self.replacement:
                for start in range(0, self.num_samples, 4096):
                    yield from r.integers(0, n, min(4096, self.num_samples - start)).tolist()
            else:
                yield from r.permutation(n).tolist()

        torch.multinomial, sampler.__iter__ = multinomial, iterate
        try:
            yield
        finally:
            torch.multinomial, sampler.__iter__ = saved_multinomial, saved_iter


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- a. minGPT -----------------------------------------------------------------------------------------------------
@MODES
def test_mingpt(torch, compiled):
    g, t = pair_models(torch, rp.build_mingpt)
    problems = _rng(1).integers(0, 3, (16, 6))
    gm = copy.deepcopy(g)
    ds = rp.sort_dataset(graphnn, problems)
    x, y = (graphnn.stack([ds[i][k] for i in range(4)]) for k in (0, 1))
    n = sum(p.numel() for p in g.parameters())
    rounds = probe_roundings(lambda: gm(x, y)[1]) + steps(n) + 4 + ADAMW_ROUNDINGS
    # the key projection's bias has no gradient in exact arithmetic (softmax ignores a constant added to a row)
    noise = noise_gradients(lambda: gm(x, y)[1], gm, rounds)
    assert noise["transformer.h.0.attn.c_attn.bias"][16:32].all()
    with same_draws(torch, 3):
        t_res = rp.train_mingpt(torch, t, problems)
    graphnn.manual_seed(3)
    g_res = rp.train_mingpt(graphnn, g, problems, compile=compile_for(compiled))
    assert g_res["n_params"] == t_res["n_params"]
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    assert g_res["generated"] == t_res["generated"]
    compare_state(g, t, rounds * 4, noise, 4 * adam_step_bound(5e-3, (0.9, 0.95)))


def test_mingpt_optimizer_groups(torch):
    """configure_optimizers' walk over named_modules()/named_parameters() sorts every parameter into one group, as
    PyTorch's modules do (Linear weights decay; biases, LayerNorm and Embedding weights do not)."""
    g, t = pair_models(torch, rp.build_mingpt)
    cfg = rp.GPTConfig(learning_rate=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    go, to = g.configure_optimizers(cfg), t.configure_optimizers(cfg)
    assert [len(gr["params"]) for gr in go.param_groups] == [len(gr["params"]) for gr in to.param_groups]
    assert [gr["weight_decay"] for gr in go.param_groups] == [0.1, 0.0]
    assert go.param_groups[0]["betas"] == (0.9, 0.95)
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]


# -- b. vision transformer -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schedule,compiled", [("warmup_cosine", False), ("warmup_cosine", True), ("onecycle", False), ("cosine", False)]
)
def test_vision_transformer(torch, schedule, compiled):
    g, t = pair_models(torch, rp.build_vit)
    r = _rng(2)
    images, labels = r.standard_normal((8, 3, 8, 8)).astype(np.float32), r.integers(0, 5, 8)
    gm = copy.deepcopy(g)
    crit = graphnn.nn.CrossEntropyLoss(label_smoothing=0.1)
    probe = lambda: crit(gm(graphnn.tensor(images[:4])), graphnn.tensor(labels[:4]))  # noqa: E731
    rounds = probe_roundings(probe) + ADAMW_ROUNDINGS
    noise = noise_gradients(probe, gm, rounds)  # the key projection's bias: no gradient in exact arithmetic
    assert noise["encoder.layers.0.self_attn.in_proj_bias"][16:32].all()
    t_res = rp.train_vit(torch, t, torch.tensor(images), torch.tensor(labels), schedule)
    g_res = rp.train_vit(
        graphnn, g, graphnn.tensor(images), graphnn.tensor(labels), schedule, compile=compile_for(compiled)
    )
    np.testing.assert_allclose(g_res["lrs"], t_res["lrs"], rtol=1e-12, atol=1e-15)
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    assert g_res["correct"] == t_res["correct"]
    compare_series([g_res["logits"]], [t_res["logits"]], "logits", rounds, offset=4)
    compare_state(g, t, rounds * 4, noise, 4 * adam_step_bound(3e-3, (0.9, 0.999)))


def test_vit_initializers(torch):
    """trunc_normal_ keeps every value in [a, b] with the requested spread; its generator argument is honoured."""
    w = graphnn.empty(4000)
    graphnn.nn.init.trunc_normal_(w, mean=0.5, std=1.0, a=0.0, b=1.0)
    v = to_np(w)
    assert v.min() >= 0.0 and v.max() <= 1.0
    # a normal truncated symmetrically around its mean: the mean is kept, the variance shrinks (for [m-s, m+s] to
    # 1 - 2 phi(1) / (Phi(1) - Phi(-1)) = 0.2911 s^2); 4000 draws: standard errors ~ 0.009 and ~ 0.004
    exp_var = 1 - 2 * math.exp(-0.5) / math.sqrt(2 * math.pi) / math.erf(1 / math.sqrt(2))
    w = graphnn.empty(4000)
    graphnn.nn.init.trunc_normal_(w, mean=0.0, std=2.0, a=-2.0, b=2.0)
    assert abs(to_np(w).mean()) < 0.05 and abs(to_np(w).var() / 4.0 - exp_var) < 0.03
    a, b = graphnn.empty(5), graphnn.empty(5)
    graphnn.nn.init.trunc_normal_(a, std=0.02, generator=graphnn.Generator().manual_seed(1))
    graphnn.nn.init.trunc_normal_(b, std=0.02, generator=graphnn.Generator().manual_seed(1))
    assert (to_np(a) == to_np(b)).all()
    s = graphnn.empty(10, 6)
    graphnn.nn.init.sparse_(s, sparsity=0.3)
    assert ((to_np(s) == 0).sum(0) >= 3).all()


# -- c. ResNet -----------------------------------------------------------------------------------------------------
@MODES
def test_resnet_with_checkpoint_resume(torch, compiled, tmp_path):
    g, t = pair_models(torch, rp.build_resnet)
    g_sd = g.state_dict()
    assert not to_np(g_sd["layer1.0.bn2.weight"]).any() and (to_np(g_sd["layer1.0.bn1.weight"]) == 1).all()
    conv = to_np(g_sd["conv1.weight"])  # kaiming_normal_, fan_out: std sqrt(2 / (out channels * 9))
    assert abs(conv.std() / math.sqrt(2 / (4 * 9)) - 1) < 0.5
    r = _rng(3)
    images, labels = r.standard_normal((18, 3, 8, 8)).astype(np.float32), r.integers(0, 5, 18)
    gm = copy.deepcopy(g)
    crit = graphnn.nn.CrossEntropyLoss()
    rounds = probe_roundings(lambda: crit(gm(graphnn.tensor(images[:6])), graphnn.tensor(labels[:6]))) + 6
    (tmp_path / "g").mkdir()
    (tmp_path / "t").mkdir()
    t_res = rp.train_resnet(torch, t, torch.tensor(images), torch.tensor(labels), str(tmp_path / "t"), build=None)
    g_res = rp.train_resnet(
        graphnn,
        g,
        graphnn.tensor(images),
        graphnn.tensor(labels),
        str(tmp_path / "g"),
        compile=compile_for(compiled),
        build=rp.build_resnet,
    )
    assert g_res["lr"] == pytest.approx(t_res["lr"], rel=1e-12)
    compare_series([h[0] for h in g_res["history"]], [h[0] for h in t_res["history"]], "loss", rounds)
    assert [h[1] for h in g_res["history"]] == [h[1] for h in t_res["history"]]
    compare_series([e[0] for e in g_res["evals"]], [e[0] for e in t_res["evals"]], "val loss", rounds, offset=2)
    assert [e[1:] for e in g_res["evals"]] == [e[1:] for e in t_res["evals"]]
    ckpt = graphnn.load(str(tmp_path / "g" / "checkpoint.pth.tar"))
    t_ckpt = torch.load(str(tmp_path / "t" / "checkpoint.pth.tar"), weights_only=False)
    assert ckpt["epoch"] == 1 and list(ckpt["state_dict"]) == list(t_ckpt["state_dict"])
    for k, v in t_ckpt["state_dict"].items():  # 0-d buffers stay 0-d through save and load
        assert tuple(ckpt["state_dict"][k].shape) == tuple(v.shape), k
    assert ckpt["scheduler"]["last_epoch"] == t_ckpt["scheduler"]["last_epoch"]
    assert sorted(ckpt["optimizer"]["state"]) == sorted(t_ckpt["optimizer"]["state"])


# -- d. reinforcement learning -------------------------------------------------------------------------------------
def _states(n: int) -> np.ndarray:
    env, out = rp.LineWorld(seed=5), []
    state, _ = env.reset()
    for i in range(n):
        out.append(state)
        state, *_ = env.step(i % 2)
    return np.asarray(out, np.float32)


def test_reinforce(torch):
    g, t = pair_models(torch, rp.build_reinforce)
    gm = copy.deepcopy(g)
    states = graphnn.tensor(_states(8))

    def probe():
        m = graphnn.distributions.Categorical(gm(states))
        return -(m.log_prob(graphnn.tensor([0, 1] * 4)) * graphnn.arange(8.0)).sum()

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    with same_draws(torch, 4):
        t_hist = rp.train_reinforce(torch, t)
    graphnn.manual_seed(4)
    g_hist = rp.train_reinforce(graphnn, g)
    assert [h[0] for h in g_hist] == [h[0] for h in t_hist]  # the actions sampled
    compare_series([h[1] for h in g_hist], [h[1] for h in t_hist], "policy loss", rounds)
    assert [h[2] for h in g_hist] == pytest.approx([h[2] for h in t_hist], rel=1e-12)
    compare_state(g, t, rounds * 3)


def test_actor_critic(torch):
    g, t = pair_models(torch, rp.build_actor_critic)
    gm = copy.deepcopy(g)
    states = graphnn.tensor(_states(8))

    def probe():
        probs, values = gm(states)
        m = graphnn.distributions.Categorical(probs)
        value_loss = graphnn.nn.functional.smooth_l1_loss(values, graphnn.arange(8.0).view(8, 1))
        return -(m.log_prob(graphnn.tensor([0, 1] * 4))).sum() + value_loss - 0.01 * m.entropy().mean()

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    with same_draws(torch, 6):
        t_hist = rp.train_actor_critic(torch, t)
    graphnn.manual_seed(6)
    g_hist = rp.train_actor_critic(graphnn, g)
    assert [h[0] for h in g_hist] == [h[0] for h in t_hist]
    compare_series([h[1] for h in g_hist], [h[1] for h in t_hist], "loss", rounds)
    compare_state(g, t, rounds * 3)


@MODES
def test_distributions_match_pytorch(torch, compiled):
    """log_prob, entropy, probs/logits and kl_divergence of Categorical, Bernoulli, Normal and Uniform (and their
    gradients) against torch.distributions; float64, so the bound is tiny."""
    from parity_util import check

    def fn(lib, logits, probs, loc, scale, x):
        D = lib.distributions
        c, cp_ = D.Categorical(logits=logits), D.Categorical(probs=probs.softmax(-1))
        k = lib.tensor([[0, 2, 1], [3, 0, 0]])
        b, bp = D.Bernoulli(logits=loc), D.Bernoulli(probs=scale.sigmoid())
        n, n2 = D.Normal(loc, scale.exp()), D.Normal(0.0, 1.0)
        u = D.Uniform(loc - 3.0, loc + scale.exp() + 3.0)
        bit = (x > 0).to(x.dtype)
        return (
            c.log_prob(k.t()),
            c.entropy(),
            c.probs,
            cp_.logits,
            cp_.log_prob(lib.tensor(1)),
            D.kl_divergence(c, cp_),
            b.log_prob(bit),
            bp.log_prob(bit),
            b.entropy(),
            D.kl_divergence(b, bp),
            n.log_prob(x),
            n.entropy(),
            n.cdf(x),
            n2.log_prob(x),
            D.kl_divergence(n, n2),
            n.mean + n.stddev + n.variance,
            u.log_prob(x),
            u.entropy(),
            u.cdf(x),
            logits.logsumexp(-1),
            lib.logsumexp(logits, dim=(0, 1), keepdim=True),
        )

    r = _rng(7)
    check(
        torch,
        lambda *a: fn(graphnn, *a),
        lambda *a: fn(torch, *a),
        [r.standard_normal((2, 4)), r.standard_normal((2, 4)), r.standard_normal(3), r.standard_normal(3)]
        + [r.standard_normal(3)],
        compiled=compiled,
    )


def test_distribution_sampling_and_errors(torch):
    D = graphnn.distributions
    graphnn.manual_seed(0)
    m = D.Categorical(graphnn.tensor([[0.2, 0.8], [1.0, 0.0]]))
    s = m.sample((3000,))
    assert tuple(s.shape) == (3000, 2) and s.dtype == graphnn.int64
    assert abs(to_np(s[:, 0]).mean() - 0.8) < 0.04 and (to_np(s[:, 1]) == 0).all()
    assert tuple(m.batch_shape) == (2,) and tuple(m.event_shape) == ()
    assert repr(m) == "Categorical(probs: graphnn.Size([2, 2]))"
    n = D.Normal(graphnn.zeros(2, requires_grad=True), graphnn.ones(2))
    z = n.rsample((4000,))
    assert z.requires_grad and not n.sample().requires_grad and abs(to_np(z).std() - 1) < 0.05
    bern = D.Bernoulli(graphnn.full((4000,), 0.3)).sample()
    assert abs(to_np(bern).mean() - 0.3) < 0.04
    assert to_np(D.Categorical(graphnn.tensor([1.0, 3.0])).probs).tolist() == [0.25, 0.75]  # normalized
    for lib in (graphnn, torch):
        with pytest.raises(ValueError, match="constraint"):
            lib.distributions.Categorical(lib.tensor([0.5, -0.7]))
        with pytest.raises(ValueError, match="support"):
            lib.distributions.Categorical(lib.tensor([0.5, 0.5])).log_prob(lib.tensor(2))
        with pytest.raises(ValueError, match="constraint"):
            lib.distributions.Normal(0.0, lib.tensor(-1.0))
        with pytest.raises(ValueError, match="but not both"):
            lib.distributions.Bernoulli()
    # inside graphnn.compile a sample is drawn at every call
    step = graphnn.compile(lambda p: D.Categorical(p).sample((64,)))
    p = graphnn.full((8,), 0.125)
    assert (to_np(step(p)) != to_np(step(p))).any()


# -- e. seq2seq ----------------------------------------------------------------------------------------------------
@MODES
def test_seq2seq_attention(torch, compiled):
    (g_enc, g_dec), (t_enc, t_dec) = pair_models(torch, rp.build_seq2seq)
    r = _rng(8)
    inputs, targets = r.integers(2, 9, (8, 5)).astype(np.int32), r.integers(1, 8, (8, 5)).astype(np.int32)
    ge, gd = copy.deepcopy(g_enc), copy.deepcopy(g_dec)

    def probe():
        x, y = graphnn.LongTensor(inputs[:4]), graphnn.LongTensor(targets[:4])
        out, _, _ = gd(*ge(x), y)
        return graphnn.nn.NLLLoss()(out.view(-1, out.size(-1)), y.view(-1))

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["adam"]
    # the attention's score bias has no gradient in exact arithmetic (softmax ignores a constant added to a row)
    noise = noise_gradients(probe, gd, rounds)
    assert noise["attention.Va.bias"].all()
    with same_draws(torch, 8):
        t_res = rp.train_seq2seq(torch, (t_enc, t_dec), inputs, targets)
    graphnn.manual_seed(8)
    g_res = rp.train_seq2seq(graphnn, (g_enc, g_dec), inputs, targets, compile=compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "epoch loss", rounds, offset=2)
    assert g_res["decoded"] == t_res["decoded"]
    compare_series([g_res["attention"]], [t_res["attention"]], "attention", rounds, offset=4)
    compare_state(g_enc, t_enc, rounds * 4)
    compare_state(g_dec, t_dec, rounds * 4, noise, 4 * adam_step_bound(0.01, (0.9, 0.999)))


# -- f. char-RNN name classification -------------------------------------------------------------------------------
@MODES
def test_char_rnn_classification(torch, compiled):
    g, t = pair_models(torch, rp.build_char_rnn)
    gm = copy.deepcopy(g)

    def probe():
        hidden, line = gm.initHidden(), graphnn.zeros(6, 1, rp.n_letters)
        for i in range(6):
            line[i][0][i] = 1
            output, hidden = gm(line[i], hidden)
        return graphnn.nn.NLLLoss()(output, graphnn.tensor([1]))

    rounds = probe_roundings(probe) + UPDATE_ROUNDINGS["sgd"]
    t_res = rp.train_char_rnn(torch, t)
    g_res = rp.train_char_rnn(graphnn, g, compile=compile_for(compiled))
    compare_series(g_res["losses"], t_res["losses"], "loss", rounds)
    assert g_res["guesses"] == t_res["guesses"]
    close(g_res["confusion"], t_res["confusion"], "confusion")
    for a, b in zip(g_res["predictions"], t_res["predictions"]):
        assert [c for _, c in a] == [c for _, c in b]
        close(
            np.float32([v for v, _ in a]),
            np.float32([v for v, _ in b]),
            "top-2",
            steps_tolerance(np.float32(1), rounds * 7),
        )
    compare_state(g, t, rounds * 6)
    assert rp.unicode_to_ascii("Łukasik Bélanger") == "ukasik Belanger"


# -- the rest of PyTorch's API that such programs reach for ------------------------------------------------------
def _api_functions(L, a, b, v):
    """Composite functions added for programs like the ones above, in one library (a, b: (3, 4); v: (4,))."""
    pos = a.abs() + 0.5
    return (
        L.square(a) + a.reciprocal() * 0 + a.clamp_min(0.1) + L.clamp_max(a, 0.2),
        L.addcmul(a, a, b, value=0.5) + a.addcdiv(b, pos, value=2) + L.lerp(a, b, 0.3),
        L.addmm(v[:3].unsqueeze(1), a, b.t(), beta=0.5, alpha=2.0),
        pos.log2() + L.log10(pos) + a.exp2() + L.sinh(a) + a.cosh() + L.tan(a * 0.5),
        L.logit(L.sigmoid(a)) + L.xlogy(pos, pos),
        *L.var_mean(a, 1),
        *L.std_mean(a, 0, keepdim=True),
        L.diff(a, dim=1) + 0,
        L.diff(a, n=2, dim=0, prepend=b),
        L.flip(a, [0, 1]) + a.flip(1),
        L.roll(a, 1, 0) + a.roll((2, -1), (1, 0)),
        L.roll(a, 5),
        L.movedim(a.unsqueeze(0), 0, 2).reshape(3, 4) + a.swapaxes(0, 1).t(),
        a.unflatten(1, (2, 2)),
        a.tile((2, 1)),
        a.repeat_interleave(2, dim=1),
        L.diag(v) + L.diag(v, 1)[:4, :4] + L.diag(v, -1)[1:, :4],
        L.diag(a) + L.diag(a, 1) + L.diagonal(a, -1)[:2].sum(),
        L.trace(a @ b.t()),
        L.outer(v, v[:3]),
        L.tensordot(a, b, dims=([1], [1])) + L.tensordot(a, b.t(), dims=1),
        L.take_along_dim(a, a.argsort(1), 1),
        *L.meshgrid(v[:2], v, indexing="xy"),
        *L.broadcast_tensors(a, v),
        L.logsumexp(a, 1) + a.logsumexp((0, 1)),
        a.unsqueeze(0).unsqueeze(2).squeeze((0, 2)),
        a.mT,
        L.isnan(a / (a - a)) | L.isinf(1 / (a - a)),
        L.isfinite(a / (a - a)),
        L.isclose(a, a + 1e-9) & ~L.isclose(a, a + 1),
        L.all(a > -2, dim=1),
        (a > 0).any(0),
        L.any(a > 100),
        L.count_nonzero(a > 0, dim=0),
    )


@MODES
def test_api_functions_match_pytorch(torch, compiled):
    from parity_util import check

    r = _rng(9)
    check(
        torch,
        lambda *x: _api_functions(graphnn, *x),
        lambda *x: _api_functions(torch, *x),
        [r.standard_normal((3, 4)), r.standard_normal((3, 4)), r.standard_normal(4)],
        compiled=compiled,
    )


def test_api_values_and_utilities(torch):
    x = np.array([[0.5, -1.0, 0.0], [2.0, 0.0, 3.0]], np.float32)
    for lib in (graphnn, torch):
        t = lib.tensor(x)
        assert lib.allclose(t, t + 1e-9) and not lib.allclose(t, t + 1) and lib.equal(t, t.clone())
        assert not lib.equal(t, t[:1])
        assert lib.finfo(lib.float32).eps == np.finfo(np.float32).eps and lib.finfo(t.dtype).min == -lib.finfo().max
        assert lib.finfo(lib.float64).tiny == np.finfo(np.float64).tiny and lib.iinfo(lib.int64).max == 2**63 - 1
        assert to_np(lib.nonzero(t)).tolist() == [[0, 0], [0, 1], [1, 0], [1, 2]] == to_np(lib.argwhere(t)).tolist()
        assert [to_np(i).tolist() for i in lib.where(t > 0)] == [[0, 1, 1], [0, 0, 2]]
        assert [to_np(i).tolist() for i in t.nonzero(as_tuple=True)] == [[0, 0, 1, 1], [0, 1, 0, 2]]
        assert tuple(lib.broadcast_shapes((3, 1), (4,))) == (3, 4)
        padded = lib.nn.utils.rnn.pad_sequence([lib.ones(2), lib.ones(3)], batch_first=True, padding_value=-1)
        assert to_np(padded).tolist() == [[1, 1, -1], [1, 1, 1]]
        assert tuple(lib.nn.utils.rnn.pad_sequence([lib.ones(2, 5), lib.ones(3, 5)]).shape) == (3, 2, 5)
        lin = lib.nn.Linear(2, 3)
        vec = lib.nn.utils.parameters_to_vector(lin.parameters())
        assert tuple(vec.shape) == (9,)
        lib.nn.utils.vector_to_parameters(lib.arange(9.0), lin.parameters())
        assert to_np(lin.bias).tolist() == [6, 7, 8]
        assert to_np(lib.repeat_interleave(lib.tensor([1, 2]), lib.tensor([2, 1]))).tolist() == [1, 1, 2]
        assert lib.get_default_dtype() == lib.float32
        with lib.autograd.detect_anomaly():
            lib.autograd.set_detect_anomaly(False)
    lin = graphnn.nn.Linear(2, 2)
    assert graphnn.compile(lin, disable=True) is lin
    out = graphnn.compile(lin, mode="max-autotune", fullgraph=True, dynamic=False)(graphnn.ones(1, 2))
    close(out, lin(graphnn.ones(1, 2)), "compiled with torch.compile's options")
    with pytest.raises(TypeError):
        graphnn.set_default_dtype(graphnn.int64)  # (float64 is a valid default: tests/test_api_math.py)


def test_random_draws():
    graphnn.manual_seed(1)
    state = graphnn.get_rng_state()
    n = graphnn.normal(graphnn.full((4000,), 2.0), graphnn.full((4000,), 0.5))
    graphnn.set_rng_state(state)
    assert (to_np(graphnn.normal(graphnn.full((4000,), 2.0), 0.5)) == to_np(n)).all()  # the same draws again
    assert abs(to_np(n).mean() - 2) < 0.05 and abs(to_np(n).std() - 0.5) < 0.05
    assert tuple(graphnn.normal(0.0, 1.0, size=(2, 3)).shape) == (2, 3)
    b = graphnn.bernoulli(graphnn.full((4000,), 0.25))
    assert set(np.unique(to_np(b)).tolist()) <= {0.0, 1.0} and abs(to_np(b).mean() - 0.25) < 0.03
    assert abs(to_np(graphnn.empty(4000).bernoulli_(0.75)).mean() - 0.75) < 0.03
    e = to_np(graphnn.empty(4000).exponential_(2.0))
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.03
    graphnn.random.manual_seed(5)
    a = graphnn.rand(3)
    graphnn.manual_seed(5)
    assert (to_np(a) == to_np(graphnn.rand(3))).all()
