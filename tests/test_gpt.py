"""End to end: a small GPT written against PyTorch's API runs with graphnn in place of torch and trains as PyTorch's.

The model: token and position embeddings, pre-norm blocks (LayerNorm without bias, causal self-attention through
F.scaled_dot_product_attention(is_causal=True), a GELU MLP), a final LayerNorm without bias, an lm_head tied to the
token embedding, cross_entropy with ignore_index=-1; AdamW with two parameter groups built from named_parameters()
(matrices decay, vectors do not; `fused` passed only when the signature has it and the device is CUDA), gradient
clipping at 1.0. Like nanoGPT's bias=False configuration, no Linear has a bias: the key projection's bias has a
gradient that is exactly zero (softmax ignores a shift shared by all keys), so its values would be rounding noise
that Adam's normalized update amplifies, in either library. The same source builds it in both libraries; PyTorch loads graphnn's initial weights; five
training steps run eagerly and compiled, and every loss and the final parameters must agree.

Tolerance: steps_tolerance with n * step_roundings(...) roundings after n steps, relative to each array's largest
magnitude (parity_util), with the rounding count of one step derived from the model's sizes below.
"""

import inspect
import math

import numpy as np
import pytest

import graphnn
from graphnn.ir.roundoff import steps
from parity_util import close, compare_params, copy_state, steps_tolerance

VOCAB, BLOCK, EMBD, HEADS, LAYERS, BATCH = 23, 8, 16, 2, 2, 4


def gpt_class(torch):
    """The model, written for PyTorch (`torch` is torch or graphnn)."""
    nn, F = torch.nn, torch.nn.functional

    class SelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, dropout):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
            self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
            self.resid_dropout = nn.Dropout(dropout)
            self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=p, is_causal=True)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self, n_embd, dropout):
            super().__init__()
            self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=False)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self, n_embd, n_head, dropout):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd, bias=False)
            self.attn = SelfAttention(n_embd, n_head, dropout)
            self.ln_2 = nn.LayerNorm(n_embd, bias=False)
            self.mlp = MLP(n_embd, dropout)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, vocab_size, block_size, n_embd, n_head, n_layer, dropout=0.0):
            super().__init__()
            self.transformer = nn.ModuleDict(
                dict(
                    wte=nn.Embedding(vocab_size, n_embd),
                    wpe=nn.Embedding(block_size, n_embd),
                    drop=nn.Dropout(dropout),
                    h=nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)]),
                    ln_f=nn.LayerNorm(n_embd, bias=False),
                )
            )
            self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying
            self.apply(self._init_weights)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def num_params(self):
            return sum(p.numel() for p in self.parameters()) - self.transformer.wpe.weight.numel()

        def forward(self, idx, targets):
            b, t = idx.size()
            pos = torch.arange(0, t, dtype=torch.long)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss

        def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
            params = {n: p for n, p in self.named_parameters() if p.requires_grad}
            groups = [
                {"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0},
            ]
            fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device_type == "cuda"
            return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **(dict(fused=True) if fused else {}))

    return GPT


def train_step(torch, model, optimizer):
    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    return step


def step_roundings(n_params: int) -> float:
    """Roundings on the longest dependency chain of one training step (steps(K) for a sum of K terms): per block
    two LayerNorms (mean and variance over EMBD, centring, rsqrt, scale: 2 steps(EMBD) + 6 each), attention (the
    qkv projection steps(EMBD) + 1, scores steps(EMBD / HEADS) + 1, softmax steps(BLOCK) + 6, weights times values
    steps(BLOCK), the output projection steps(EMBD) + 1, the residual 1) and the MLP (steps(EMBD) + 1, GELU 6,
    steps(4 EMBD) + 1, the residual 1); the embeddings 1, the final LayerNorm, the tied head steps(EMBD) and the
    loss (log_softmax steps(VOCAB) + 6, the mean over BATCH * BLOCK). The backward pass follows the same chain
    (twice the forward); clipping a norm over every parameter value steps(n_params) + 4; AdamW's update 15."""
    ln = 2 * steps(EMBD) + 6
    attn = steps(EMBD) + 1 + steps(EMBD // HEADS) + 1 + steps(BLOCK) + 6 + steps(BLOCK) + steps(EMBD) + 2
    mlp = steps(EMBD) + 1 + 6 + steps(4 * EMBD) + 2
    forward = 1 + LAYERS * (2 * ln + attn + mlp) + ln + steps(EMBD) + steps(VOCAB) + 6 + steps(BATCH * BLOCK)
    return 2 * forward + steps(n_params) + 4 + 15


def _batches(n: int):
    r = np.random.default_rng(40)
    out = []
    for _ in range(n):
        x, y = r.integers(0, VOCAB, (BATCH, BLOCK)), r.integers(0, VOCAB, (BATCH, BLOCK))
        y[0, :3] = -1  # ignored targets
        out.append((x, y))
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_gpt_trains_as_pytorch(torch, compiled, dtype):
    graphnn.manual_seed(0)
    g = gpt_class(graphnn)(VOCAB, BLOCK, EMBD, HEADS, LAYERS).to(getattr(graphnn, dtype))
    t = gpt_class(torch)(VOCAB, BLOCK, EMBD, HEADS, LAYERS).to(getattr(torch, dtype))
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(g.state_dict()) == list(t.state_dict())
    assert g.num_params() == t.num_params()
    assert g.lm_head.weight is g.transformer.wte.weight
    copy_state(torch, g, t)
    gopt = g.configure_optimizers(0.1, 3e-3, (0.9, 0.95), "cpu")
    topt = t.configure_optimizers(0.1, 3e-3, (0.9, 0.95), "cpu")
    assert gopt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    g_step, t_step = train_step(graphnn, g, gopt), train_step(torch, t, topt)
    g_step = graphnn.compile(g_step) if compiled else g_step
    rounds = step_roundings(sum(p.numel() for p in t.parameters()))
    for i, (x, y) in enumerate(_batches(5)):
        t_loss = t_step(torch.tensor(x), torch.tensor(y))
        g_loss = g_step(graphnn.tensor(x), graphnn.tensor(y))
        assert g_loss.dtype_name == dtype
        close(g_loss, t_loss, f"loss {i}", steps_tolerance(t_loss, rounds * (i + 1)))
    compare_params(g, t, rounds * 5)
    for p, q in zip(g.parameters(), t.parameters()):
        for k in ("exp_avg", "exp_avg_sq"):
            v = topt.state[q][k]
            close(gopt.state[p][k], v, k, steps_tolerance(v, rounds * 5))
