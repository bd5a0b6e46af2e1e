"""A GPT program written for PyTorch (tests/data/gpt_style: model.py, train.py, sample.py, in the style of the
well-known minimal GPT repositories) runs on graphnn with only its torch imports changed, as PyTorch runs it.

Both libraries resume from one initial checkpoint (written by torch.save: graphnn reads it) and train with the same
batches (the one seam: `train.batch_offsets`, which draws the windows with torch.randint, returns the same offsets in
both); losses, evaluations, the final parameters and the checkpoints each writes must agree, for the fused attention
(F.scaled_dot_product_attention) and for the written-out one (tril mask buffer, masked_fill, softmax), with graphnn
eager and with the model compiled (`torch.compile(model)`). Training resumes from each library's own checkpoint
(graphnn.save's and torch.save's) and continues alike; `generate(top_k=1)` from the same weights gives the same tokens.
The idioms around them (autocast, GradScaler, torch.backends flags, formatting a 0-d loss, crop_block_size) are
checked one by one.

Tolerances: values after n optimizer steps get steps_tolerance with n * step_roundings(...) roundings, the rounding
count of one step derived from the model's sizes (as in test_gpt), plus for parameters what AdamW's normalized step
makes of their gradients' rounding (AdamAmplification, recorded along PyTorch's run); generated tokens are compared
exactly, after checking that each chosen token's logit leads the others by more than twice the forward's tolerance.
(The recorded-graph bounds, recorded_bounds, are far too loose here: they multiply by 1/std through every LayerNorm.)
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import types
import warnings

import numpy as np
import pytest

import graphnn
from graphnn.ir.roundoff import steps
from parity_util import close, copy_state, steps_tolerance, to_np

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "data", "gpt_style")
TEXT = os.path.join(HERE, "data", "pytorch-nn-tutorial.md")
CONFIG = dict(
    data_path=TEXT,
    batch_size=4,
    block_size=16,
    n_layer=2,
    n_head=2,
    n_embd=32,
    gradient_accumulation_steps=2,
    eval_interval=4,
    eval_iters=2,
    max_iters=8,
    lr_decay_iters=12,
    warmup_iters=2,
    learning_rate=3e-3,
    min_lr=3e-4,
    dropout=0.0,
    bias=False,
    verbose=False,
)
RESUMED_ITERS = 12


# -- running the program with either library -------------------------------------------------------------------------
def with_graphnn(source: str) -> str:
    """The one change a user makes: torch imports become graphnn imports (`import torch` -> `import graphnn as
    torch`, `import torch.nn as nn` -> `import graphnn.nn as nn`, `from torch.x import y` -> `from graphnn.x ...`)."""
    source = re.sub(r"^import torch$", "import graphnn as torch", source, flags=re.M)
    source = re.sub(r"^import torch\.([\w.]+) as (\w+)$", r"import graphnn.\1 as \2", source, flags=re.M)
    return re.sub(r"^from torch(\.[\w.]+)? import", r"from graphnn\1 import", source, flags=re.M)


def _exec(name: str, lib: str, deps: dict) -> types.ModuleType:
    """Load PROGRAM/name.py as a new module for `lib` ('torch' or 'graphnn'), `deps` importable by their names."""
    path = os.path.join(PROGRAM, name + ".py")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    mod = types.ModuleType(f"gpt_{name}_{lib}")
    mod.__file__ = path
    saved = {k: sys.modules.get(k) for k in deps}
    sys.modules.update(deps)
    try:
        code = compile(with_graphnn(source) if lib == "graphnn" else source, path, "exec", dont_inherit=True)
        exec(code, mod.__dict__)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod


def load_program(lib: str) -> types.SimpleNamespace:
    """Fresh model, train and sample modules (train.py's settings are module globals)."""
    model = _exec("model", lib, {})
    return types.SimpleNamespace(
        model=model, train=_exec("train", lib, {"model": model}), sample=_exec("sample", lib, {"model": model})
    )


def same_batches(prog, lib, seed: int = 5) -> None:
    """Make train.get_batch draw its window offsets from a NumPy stream, the same in both libraries."""
    rng = np.random.default_rng(seed)
    prog.train.batch_offsets = lambda n: lib.tensor(rng.integers(0, n - prog.train.block_size, prog.train.batch_size))


def vocab_size() -> int:
    with open(TEXT, encoding="utf-8") as f:
        return len(set(f.read()))


def model_args(flash: bool) -> dict:
    keys = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dropout")
    return dict({k: CONFIG[k] for k in keys}, vocab_size=vocab_size(), flash=flash)


def write_initial_checkpoint(torch, path: str, flash: bool) -> None:
    """graphnn's initial weights, in a torch.save checkpoint both libraries resume from."""
    g, t = load_program("graphnn"), load_program("torch")
    graphnn.manual_seed(0)
    args = model_args(flash)
    gm, tm = g.model.GPT(g.model.GPTConfig(**args)), t.model.GPT(t.model.GPTConfig(**args))
    copy_state(torch, gm, tm)
    opt = tm.configure_optimizers(0.1, CONFIG["learning_rate"], (0.9, 0.95), "cpu")
    os.makedirs(path, exist_ok=True)
    ckpt = {"model": tm.state_dict(), "optimizer": opt.state_dict(), "model_args": args, "iter_num": 0}
    torch.save(dict(ckpt, best_val_loss=1e9, config={}), os.path.join(path, "ckpt.pt"))


class AdamAmplification:
    """What AdamW's normalized step adds to a parameter's error, recorded along PyTorch's run: a gradient element
    off by at most delta (its rounding bound) moves m_hat and sqrt(v_hat) by at most delta each, so the step
    lr * m_hat / (sqrt(v_hat) + eps) moves by at most lr * 2 delta / (sqrt(v_hat) + eps) (first order). Where a
    gradient is near zero (|g| ~ eps) that is far above the rounding of the update itself."""

    def __init__(self):
        self.bound: dict = {}

    def attach(self, model, optimizer, rounds: float) -> None:
        names = {id(p): n for n, p in model.named_parameters()}

        def after_step(opt, args, kwargs):
            for group in opt.param_groups:
                for p in group["params"]:
                    state = opt.state[p]
                    v_hat = to_np(state["exp_avg_sq"]) / (1 - group["betas"][1] ** int(state["step"]))
                    delta = steps_tolerance(p.grad, rounds)
                    step = group["lr"] * 2 * delta / (np.sqrt(v_hat) + group["eps"])
                    self.bound[names[id(p)]] = self.bound.get(names[id(p)], 0.0) + step

        optimizer.register_step_post_hook(after_step)


def record_adam(prog, amplification: AdamAmplification) -> None:
    """Attach `amplification` to every optimizer the program's model configures."""
    configure = prog.model.GPT.configure_optimizers

    def recording(model, *args, **kwargs):
        opt = configure(model, *args, **kwargs)
        amplification.attach(model, opt, step_roundings(sum(p.numel() for p in model.parameters())))
        return opt

    prog.model.GPT.configure_optimizers = recording


def train_twice(prog, lib, out_dir: str, **settings) -> tuple:
    """(first run from the initial checkpoint to max_iters, the run resumed from the checkpoint it wrote)."""
    same_batches(prog, lib)
    first = prog.train.main(**CONFIG, init_from="resume", out_dir=out_dir, **settings)
    same_batches(prog, lib, seed=6)
    resumed = prog.train.main(init_from="resume", max_iters=RESUMED_ITERS)
    return first, resumed


_TORCH_RUNS: dict = {}


def torch_run(torch, flash: bool, tmp_path_factory) -> dict:
    """PyTorch's runs (eager), once per attention variant: the initial checkpoint, both trainings, the folder."""
    if flash not in _TORCH_RUNS:
        root = str(tmp_path_factory.mktemp(f"gpt_torch_{flash}"))
        write_initial_checkpoint(torch, os.path.join(root, "init"), flash)
        shutil.copytree(os.path.join(root, "init"), os.path.join(root, "run"))
        prog, adam = load_program("torch"), AdamAmplification()
        record_adam(prog, adam)
        first, resumed = train_twice(prog, torch, os.path.join(root, "run"))
        _TORCH_RUNS[flash] = dict(root=root, first=first, resumed=resumed, adam=adam.bound)
    return _TORCH_RUNS[flash]


# -- tolerances ------------------------------------------------------------------------------------------------------
def forward_roundings(block: int | None = None) -> float:
    """Roundings on the longest dependency chain of the forward pass (steps(K) for a sum of K terms), as in
    test_gpt: per block two LayerNorms (2 steps(C) + 6 each), attention (the qkv projection steps(C) + 1, scores
    steps(C / H) + 1, softmax steps(T) + 6, weights times values steps(T), the output projection and the residual
    steps(C) + 2), the MLP (steps(C) + 1, GELU 6, steps(4 C) + 2); embeddings 1, the final LayerNorm, the tied head
    steps(C) and the loss (log_softmax steps(V) + 6, the mean over B * T)."""
    C, H, T, L, B = (CONFIG[k] for k in ("n_embd", "n_head", "block_size", "n_layer", "batch_size"))
    T = T if block is None else block
    ln = 2 * steps(C) + 6
    attn = steps(C) + 1 + steps(C // H) + 1 + steps(T) + 6 + steps(T) + steps(C) + 2
    mlp = steps(C) + 1 + 6 + steps(4 * C) + 2
    return 1 + L * (2 * ln + attn + mlp) + ln + steps(C) + steps(vocab_size()) + 6 + steps(B * T)


def step_roundings(n_params: int) -> float:
    """Roundings of one training step: backward twice the forward, plus one rounding per accumulated micro-batch;
    clipping steps(n_params) + 4 (the norm, its scale); AdamW 15."""
    return 2 * forward_roundings() + CONFIG["gradient_accumulation_steps"] + steps(n_params) + 4 + 15


def compare_runs(g: dict, t: dict, start: int, rounds: float) -> None:
    """Logged losses (after start + i + 1 steps) and evaluations (after `it` steps) within their step counts."""
    assert len(g["history"]) == len(t["history"]) and [e[0] for e in g["evals"]] == [e[0] for e in t["evals"]]
    for i, (a, b) in enumerate(zip(g["history"], t["history"])):
        close(
            np.float32(a), np.float32(b), f"loss {start + i}", steps_tolerance(np.float32(b), rounds * (start + i + 1))
        )
    for (it, *ga), (_, *ta) in zip(g["evals"], t["evals"]):
        for split, a, b in zip(("train", "val"), ga, ta):
            close(
                np.float32(a), np.float32(b), f"{split} loss at {it}", steps_tolerance(np.float32(b), rounds * (it + 1))
            )


# -- training and resuming -------------------------------------------------------------------------------------------
def _unprefixed(state: dict) -> dict:
    return {k.removeprefix("_orig_mod."): v for k, v in state.items()}


@pytest.mark.parametrize("flash", [True, False], ids=["sdpa", "masked"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_training_program_as_pytorch(torch, tmp_path_factory, tmp_path, flash, compiled):
    ref = torch_run(torch, flash, tmp_path_factory)
    shutil.copytree(os.path.join(ref["root"], "init"), tmp_path / "run")
    prog = load_program("graphnn")
    first, resumed = train_twice(prog, graphnn, str(tmp_path / "run"), compile=compiled)
    tm = ref["resumed"]["model"]
    rounds = step_roundings(sum(p.numel() for p in tm.parameters()))
    n = CONFIG["max_iters"] + 1  # iterations 0..max_iters each take a step
    compare_runs(first, ref["first"], 0, rounds)
    compare_runs(resumed, ref["resumed"], n, rounds)
    n_all = RESUMED_ITERS + 1
    # (a compiled model's keys carry torch.compile's `_orig_mod.` prefix; the reference ran eagerly)
    g_sd, t_sd = _unprefixed(resumed["model"].state_dict()), tm.state_dict()
    assert list(g_sd) == list(t_sd)
    for k, v in t_sd.items():
        close(g_sd[k], v, k, steps_tolerance(v, rounds * n_all) + ref["adam"].get(k, 0.0))
    assert resumed["model"].lm_head.weight is resumed["model"].transformer.wte.weight
    # the checkpoints: graphnn.save's file and torch.save's hold the same structure and values
    gck = graphnn.load(str(tmp_path / "run" / "ckpt.pt"))
    tck = torch.load(os.path.join(ref["root"], "run", "ckpt.pt"))
    assert gck.keys() == tck.keys() and _unprefixed(gck["model"]).keys() == tck["model"].keys()
    assert gck["model_args"] == tck["model_args"] and gck["iter_num"] == tck["iter_num"] == RESUMED_ITERS
    assert gck["config"] == {**tck["config"], "compile": compiled, "out_dir": str(tmp_path / "run")}
    assert gck["optimizer"]["param_groups"] == tck["optimizer"]["param_groups"]
    # (saved at iteration RESUMED_ITERS, before its step)
    for k, v in tck["model"].items():
        close(_unprefixed(gck["model"])[k], v, k, steps_tolerance(v, rounds * RESUMED_ITERS) + ref["adam"].get(k, 0.0))
    beta2 = tck["optimizer"]["param_groups"][0]["betas"][1]
    for i, state in tck["optimizer"]["state"].items():
        assert int(gck["optimizer"]["state"][i]["step"]) == int(state["step"]) == RESUMED_ITERS
        for k, bound in _moment_magnitudes(state, beta2, RESUMED_ITERS).items():
            close(
                gck["optimizer"]["state"][i][k], state[k], k, steps_tolerance(state[k], rounds * RESUMED_ITERS, bound)
            )


def _moment_magnitudes(state: dict, beta2: float, t: int) -> dict:
    """What the roundings of Adam's moments after t steps are relative to. Every gradient g_s is off by roundings
    relative to the largest gradient G, and G^2 <= max(v) / ((1 - beta2) beta2^(t-1)) (each g_s^2 enters v with at
    least that weight). exp_avg is a weighted mean of the g_s (weights summing to at most 1): off by up to G's
    roundings. exp_avg_sq, sum w_s g_s^2, moves by 2 sum w_s |g_s| dg <= 2 sqrt(v) dg (Cauchy-Schwarz): elements of
    v far below max(v) still move with G (a small gradient's error is relative to the large ones it was summed
    with). Plus each moment's own updates, relative to its largest element."""
    v = np.abs(to_np(state["exp_avg_sq"])).astype(np.float64)
    g = np.sqrt(v.max(initial=0.0) / ((1 - beta2) * beta2 ** (t - 1)))
    m_max = np.abs(to_np(state["exp_avg"])).max(initial=0.0)
    return {"exp_avg": g + m_max, "exp_avg_sq": 2 * np.sqrt(v) * g + v.max(initial=0.0)}


def test_resume_from_a_pytorch_checkpoint_of_a_compiled_model(torch, tmp_path):
    """A checkpoint whose keys carry torch.compile's `_orig_mod.` prefix, written by torch.save, resumes in graphnn."""
    write_initial_checkpoint(torch, str(tmp_path), True)
    path = tmp_path / "ckpt.pt"
    ckpt = torch.load(path)
    ckpt["model"] = {"_orig_mod." + k: v for k, v in ckpt["model"].items()}
    torch.save(ckpt, path)
    prog = load_program("graphnn")
    same_batches(prog, graphnn)
    res = prog.train.main(**dict(CONFIG, max_iters=2, eval_interval=100), init_from="resume", out_dir=str(tmp_path))
    ref = torch.load(path)["model"]
    assert len(res["history"]) == 3 and all(np.isfinite(res["history"]))
    assert set(res["model"].state_dict()) == {k[len("_orig_mod.") :] for k in ref}


# -- generation ------------------------------------------------------------------------------------------------------
def _check_margins(torch_prog_root: str, tokens: list) -> None:
    """Each generated token's logit (graphnn, eager, from the checkpoint's weights) leads every other by more than
    twice the two libraries' logits may differ (steps_tolerance over the forward's roundings), so argmax is exact."""
    g = load_program("graphnn")
    ckpt = graphnn.load(os.path.join(torch_prog_root, "run", "ckpt.pt"))
    model = g.model.GPT(g.model.GPTConfig(**ckpt["model_args"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    block = ckpt["model_args"]["block_size"]
    with graphnn.no_grad():
        for i in range(1, len(tokens)):
            logits, _ = model(graphnn.tensor([tokens[max(0, i - block) : i]]))
            row = to_np(logits)[0, -1]
            tol = steps_tolerance(row, forward_roundings())
            assert row[tokens[i]] - 2 * tol > np.delete(row, tokens[i]).max(), f"token {i}: margin within rounding"


@pytest.mark.parametrize("flash", [True, False], ids=["sdpa", "masked"])
def test_generate_top_k_1_as_pytorch(torch, tmp_path_factory, flash):
    """sample.py on PyTorch's trained checkpoint, in both libraries: the same text, token for token (the context
    cropped to the block size once it is longer)."""
    ref = torch_run(torch, flash, tmp_path_factory)
    settings = dict(
        out_dir=os.path.join(ref["root"], "run"), data_path=TEXT, top_k=1, num_samples=2, max_new_tokens=40, start="\n"
    )
    t_text = load_program("torch").sample.main(**settings)
    g_text = load_program("graphnn").sample.main(**settings)
    assert g_text == t_text and len(t_text[0]) == 41 > CONFIG["block_size"] and t_text[0] == t_text[1]
    with open(TEXT, encoding="utf-8") as f:
        index = {c: i for i, c in enumerate(sorted(set(f.read())))}
    _check_margins(ref["root"], [index[c] for c in t_text[0]])


def test_sample_draws_with_top_k(tmp_path, torch):
    """Sampling with top_k > 1 and a temperature runs (with the model compiled too); the top-k idiom masks as
    PyTorch's and multinomial draws only among the k kept tokens."""
    write_initial_checkpoint(torch, str(tmp_path), True)
    prog = load_program("graphnn")
    settings = dict(out_dir=str(tmp_path), data_path=TEXT, top_k=3, num_samples=2, max_new_tokens=20)
    texts = prog.sample.main(**settings, compile=True)
    assert len(texts) == 2 and all(len(t) == 21 for t in texts)
    x = np.random.default_rng(1).standard_normal((4, 9)).astype(np.float32)
    masked = []
    for lib in (graphnn, torch):
        logits = lib.tensor(x)
        v, _ = lib.topk(logits, 3)
        logits[logits < v[:, [-1]]] = -float("Inf")
        masked.append(to_np(logits))
    close(masked[0], masked[1], "masked logits")
    probs = graphnn.nn.functional.softmax(graphnn.tensor(masked[0]), dim=-1)
    draws = to_np(graphnn.multinomial(probs, num_samples=1))[:, 0]
    assert np.isfinite(masked[0]).sum(1).tolist() == [3] * 4 and np.isfinite(masked[0][np.arange(4), draws]).all()


# -- the model file's other methods ----------------------------------------------------------------------------------
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_crop_block_size(torch, compiled):
    """crop_block_size slices the position table into a new Parameter and the mask buffers; the cropped model (and
    a compiled one, which traces again) computes as PyTorch's."""
    g, t = load_program("graphnn").model, load_program("torch").model
    args = dict(model_args(False), block_size=16)
    graphnn.manual_seed(3)
    gm, tm = g.GPT(g.GPTConfig(**args)), t.GPT(t.GPTConfig(**args))
    copy_state(torch, gm, tm)
    run = graphnn.compile(gm) if compiled else gm
    idx = np.random.default_rng(0).integers(0, args["vocab_size"], (2, 8))
    run(graphnn.tensor(idx), graphnn.tensor(idx))
    for m in (gm, tm):
        m.crop_block_size(8)
    assert list(gm.state_dict()) == list(tm.state_dict()) and gm.transformer.h[0].attn.bias.shape == (1, 1, 8, 8)
    assert isinstance(gm.transformer.wpe.weight, graphnn.nn.Parameter) and gm.transformer.wpe.weight.is_leaf
    logits, loss = run(graphnn.tensor(idx), graphnn.tensor(idx))
    t_logits, t_loss = tm(torch.tensor(idx), torch.tensor(idx))
    rounds = forward_roundings(block=8)
    close(logits, t_logits.detach(), "logits", steps_tolerance(t_logits.detach(), rounds))
    close(loss, t_loss.detach(), "loss", steps_tolerance(t_loss.detach(), rounds))
    loss.backward()
    t_loss.backward()
    assert gm.transformer.wpe.weight.grad.shape == (8, args["n_embd"])


def test_counts_and_optimizer_groups(torch):
    g, t = load_program("graphnn").model, load_program("torch").model
    args = dict(model_args(True), bias=True)
    gm, tm = g.GPT(g.GPTConfig(**args)), t.GPT(t.GPTConfig(**args))
    assert gm.get_num_params() == tm.get_num_params() and gm.get_num_params(False) == tm.get_num_params(False)
    assert gm.estimate_mfu(8, 0.5) == tm.estimate_mfu(8, 0.5)
    gopt = gm.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    topt = tm.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    assert gopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    assert gm.param_counts == tm.param_counts
    assert repr(gm) == repr(tm).replace("torch.", "graphnn.")


def test_dropout_and_autocast_train_compiled(tmp_path, monkeypatch):
    """Dropout in training (drawn at every compiled call) and a bfloat16 autocast context: the program trains; the
    autocast region computes in float32 and says so once."""
    from graphnn.amp import autocast_mode

    monkeypatch.setattr(autocast_mode, "_warned", [False])
    prog = load_program("graphnn")
    same_batches(prog, graphnn)
    settings = dict(CONFIG, max_iters=3, eval_interval=2, dropout=0.1, flash=False, dtype="bfloat16", compile=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = prog.train.main(**settings, out_dir=str(tmp_path))
    notes = [str(w.message) for w in seen if "autocast" in str(w.message)]
    assert len(notes) == 1 and "float32" in notes[0], [str(w.message) for w in seen]
    assert len(res["history"]) == 4 and all(np.isfinite(res["history"]))
