"""A small GPT written once against PyTorch's API, for `graphnn bench` (gpt_train, gpt_generate) and `graphnn demo
gpt`: `gpt_class(lib)` builds it with `lib` = graphnn or torch.

Pre-norm transformer blocks (LayerNorm, causal self-attention through F.scaled_dot_product_attention, a GELU MLP),
learned position embeddings, a language-model head tied to the token embedding, no biases; AdamW with decaying
matrices and non-decaying vectors, gradient clipping; generation with a context cropped to the block size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class GPTSpec:
    """Sizes of the model: the bench's small-GPT configuration by default."""

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0


_CLASSES: dict = {}


def gpt_class(lib):
    """The GPT module class built from `lib` (graphnn or torch), made once per library."""
    if lib.__name__ not in _CLASSES:
        _CLASSES[lib.__name__] = _define(lib)
    return _CLASSES[lib.__name__]


def _define(lib):
    nn, F = lib.nn, lib.nn.functional

    class Attention(nn.Module):
        def __init__(self, s: GPTSpec):
            super().__init__()
            self.qkv = nn.Linear(s.n_embd, 3 * s.n_embd, bias=False)
            self.proj = nn.Linear(s.n_embd, s.n_embd, bias=False)
            self.drop = nn.Dropout(s.dropout)
            self.n_head, self.p = s.n_head, s.dropout

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
            return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))

    class Block(nn.Module):
        def __init__(self, s: GPTSpec):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(s.n_embd, bias=False), nn.LayerNorm(s.n_embd, bias=False)
            self.attn = Attention(s)
            self.mlp = nn.Sequential(
                nn.Linear(s.n_embd, 4 * s.n_embd, bias=False),
                nn.GELU(),
                nn.Linear(4 * s.n_embd, s.n_embd, bias=False),
                nn.Dropout(s.dropout),
            )

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self, spec: GPTSpec):
            super().__init__()
            self.spec = spec
            self.tok = nn.Embedding(spec.vocab_size, spec.n_embd)
            self.pos = nn.Embedding(spec.block_size, spec.n_embd)
            self.drop = nn.Dropout(spec.dropout)
            self.blocks = nn.ModuleList([Block(spec) for _ in range(spec.n_layer)])
            self.ln_f = nn.LayerNorm(spec.n_embd, bias=False)
            self.head = nn.Linear(spec.n_embd, spec.vocab_size, bias=False)
            self.tok.weight = self.head.weight  # tied
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    deep = name.endswith("proj.weight") or name.endswith("mlp.2.weight")
                    std = 0.02 / math.sqrt(2 * spec.n_layer) if deep else 0.02
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx, targets=None):
            t = idx.shape[1]
            x = self.drop(self.tok(idx) + self.pos(lib.arange(t, device=idx.device)))
            for block in self.blocks:
                x = block(x)
            logits = self.head(self.ln_f(x))
            if targets is None:
                return logits
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    return GPT


def make_optimizer(lib, model, lr: float = 1e-3, weight_decay: float = 0.1):
    """AdamW: weight decay on matrices, none on vectors."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return lib.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def train_step(lib, model, optimizer, clip: float = 1.0):
    """step(x, y) -> loss: one full training step, gradients clipped to norm `clip`."""

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss

    return step


def next_token(lib, model, temperature: float = 1.0, top_k: int | None = None):
    """f(idx) -> (b, 1) tokens drawn from the model's distribution after idx (a context the model can take)."""

    def sample(idx):
        logits = model(idx)[:, -1, :] / temperature
        if top_k is not None:
            v, _ = lib.topk(logits, min(top_k, logits.size(-1)))
            logits = logits.masked_fill(logits < v[:, [-1]], -math.inf)
        return lib.multinomial(lib.nn.functional.softmax(logits, dim=-1), num_samples=1)

    return sample


def generate(lib, sample, idx, max_new_tokens: int, block_size: int):
    """idx (b, t) extended by max_new_tokens tokens from sample(context), the context cropped to block_size."""
    with lib.no_grad():
        for _ in range(max_new_tokens):
            idx = lib.cat((idx, sample(idx[:, -block_size:])), dim=1)
    return idx
