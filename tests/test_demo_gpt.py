"""`graphnn demo gpt` through the command-line entry point (a tiny run), its options, and the GPT of
graphnn.tools.gpt that it and the bench's gpt_train / gpt_generate workloads use (= PyTorch's, one source)."""

import numpy as np

import graphnn
from graphnn.tools import bench, cli
from graphnn.tools.demo_gpt import CharData, lr_at
from graphnn.tools.gpt import GPTSpec, gpt_class, make_optimizer, train_step
from graphnn.ir.roundoff import steps
from parity_util import close, copy_state, steps_tolerance


def test_demo_gpt_tiny_run(capsys):
    assert cli.main(["demo", "gpt", "--steps", "12", "--batch", "4", "--tokens", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graphnn demo gpt: training a character-level GPT (4 layers, 4 heads, width 128")
    assert "on the PyTorch tutorial (" in out and "step 12/12  loss" in out and "trained 12 steps of 4 x 64" in out
    generated = out.split("characters the model generated:\n", 1)[1].split("\n" + "-" * 60)[0]
    assert len(generated) == 20


def test_demo_gpt_own_text(tmp_path, capsys):
    text = tmp_path / "abc.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    assert cli.main(["demo", "gpt", "--steps", "2", "--tokens", "0", "--text", str(text)]) in (0, 1)
    out = capsys.readouterr().out
    assert f"on {text} (1,800 characters, 28 distinct)" in out


def test_demo_gpt_option_errors(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("too short", encoding="utf-8")
    assert cli.main(["demo", "gpt", "--text", str(short)]) == 2
    assert capsys.readouterr().err == (
        "graphnn demo: error: the text has 9 characters: too short for a context of 64 (need 10 times more)\n"
    )
    assert cli.main(["demo", "gpt", "--text", str(tmp_path / "none.txt")]) == 2
    assert "--text: cannot read" in capsys.readouterr().err
    assert cli.main(["demo", "--tokens", "5"]) == 2
    assert capsys.readouterr().err == "graphnn demo: error: --tokens applies to `graphnn demo gpt` only\n"


def test_char_data_and_schedule():
    data = CharData("abcdefgh" * 20, 8)
    x, y = data.batch("train", 3, np.random.default_rng(0))
    assert x.shape == y.shape == (3, 8) and x.dtype == graphnn.int64
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])
    assert data.decode(x.numpy()[0]) in "abcdefgh" * 3
    lrs = [lr_at(i, 100, 1.0, 10) for i in range(100)]
    assert lrs[9] == 1.0 and max(lrs) == 1.0 and abs(lrs[-1] - 0.1) < 1e-3 and lrs == sorted(lrs[:10]) + lrs[10:]


def test_bench_gpt_workloads_run(torch):
    """Each runtime's gpt_train and gpt_generate calls run (graphnn compiled, PyTorch eager)."""
    for lib, mode in ((graphnn, "step"), (torch, "eager")):
        train = bench.gpt_train(lib, mode)
        train()
        generate = bench.gpt_generate(lib, mode)
        generate()
        generate()


def test_tools_gpt_step_as_pytorch(torch):
    """The bench's GPT, one source for both libraries: a compiled training step (AdamW, clipping) = PyTorch's."""
    spec = GPTSpec(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    graphnn.manual_seed(0)
    g, t = gpt_class(graphnn)(spec), gpt_class(torch)(spec)
    copy_state(torch, g, t)
    g_step = graphnn.compile(train_step(graphnn, g, make_optimizer(graphnn, g)))
    t_step = train_step(torch, t, make_optimizer(torch, t))
    r = np.random.default_rng(1)
    C, T, V = spec.n_embd, spec.block_size, spec.vocab_size
    ln = 2 * steps(C) + 6
    block = 2 * ln + 3 * steps(C) + steps(C // 2) + 2 * steps(T) + steps(4 * C) + 20
    forward = 1 + spec.n_layer * block + ln + steps(C) + steps(V) + 6 + steps(4 * T)
    rounds = 2 * forward + steps(sum(p.numel() for p in t.parameters())) + 19  # as tests/test_gpt.py counts
    for i in range(3):
        x, y = r.integers(0, V, (4, T)), r.integers(0, V, (4, T))
        want = t_step(torch.tensor(x), torch.tensor(y)).detach()
        close(g_step(graphnn.tensor(x), graphnn.tensor(y)), want, f"loss {i}", steps_tolerance(want, rounds * (i + 1)))
    with graphnn.no_grad(), torch.no_grad():
        x = r.integers(0, V, (2, T))
        want = t(torch.tensor(x))
        close(g.eval()(graphnn.tensor(x)), want, "logits", steps_tolerance(want, 4 * rounds))
