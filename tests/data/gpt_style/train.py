"""Train the GPT of model.py on a character-level text, written for PyTorch.

Run as `python train.py name=value ...` or call `main(name=value, ...)`: every setting below can be overridden.
The loop has the shape of the usual single-GPU GPT training scripts: batches of random windows of the text, mixed
precision contexts, gradient accumulation, gradient clipping, a warm-up then cosine learning rate, periodic
evaluation under no_grad, checkpoints with the model's and the optimizer's state, and resuming from one.
"""

import math
import os
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch
from torch.distributed import destroy_process_group, init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP

from model import GPT, GPTConfig

# -- settings --------------------------------------------------------------------------------------------------
out_dir = "out"
eval_interval = 4
log_interval = 1
eval_iters = 2
eval_only = False
always_save_checkpoint = True
init_from = "scratch"  # or 'resume': continue from out_dir/ckpt.pt
data_path = "input.txt"
gradient_accumulation_steps = 2
batch_size = 4
block_size = 16
n_layer = 2
n_head = 2
n_embd = 32
dropout = 0.0
bias = False
flash = True
learning_rate = 1e-3
max_iters = 8
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
decay_lr = True
warmup_iters = 2
lr_decay_iters = 8
min_lr = 1e-4
device = "cpu"
# float32, or a reduced precision for autocast where the device supports one
dtype = "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
compile = False
seed = 1337
verbose = True

SETTINGS = [k for k, v in list(globals().items()) if not k.startswith("_") and isinstance(v, (int, float, str))]


def configure(overrides):
    """Set module settings from a dict (or `name=value` strings), refusing unknown names and other types."""
    for key, value in overrides.items():
        if key not in SETTINGS:
            raise KeyError(f"unknown setting {key!r}")
        old = globals()[key]
        if isinstance(value, str) and not isinstance(old, str):
            value = type(old)(value) if not isinstance(old, bool) else value in ("1", "True", "true")
        if type(value) is not type(old) and not (isinstance(old, float) and isinstance(value, int)):
            raise TypeError(f"setting {key!r} wants {type(old).__name__}, got {type(value).__name__}")
        globals()[key] = value


def log(*args):
    if verbose:
        print(*args)


# -- data ------------------------------------------------------------------------------------------------------
def load_text(path):
    """The text as token ids (one per distinct character), split 90% / 10%, and the vocabulary."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:], chars


def batch_offsets(n_tokens):
    """Where each sequence of a batch starts."""
    return torch.randint(n_tokens - block_size, (batch_size,))


def get_batch(split):
    data = train_data if split == "train" else val_data
    ix = batch_offsets(len(data))
    x = torch.stack([torch.from_numpy((data[i : i + block_size]).astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy((data[i + 1 : i + 1 + block_size]).astype(np.int64)) for i in ix])
    if device_type == "cuda":
        x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    else:
        x, y = x.to(device), y.to(device)
    return x, y


# -- evaluation and schedule -----------------------------------------------------------------------------------
@torch.no_grad()
def estimate_loss(model, ctx):
    """Mean loss over eval_iters batches of each split, with dropout off."""
    out = {}
    model.eval()
    for split in ["train", "val"]:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            with ctx:
                logits, loss = model(X, Y)
            losses[k] = loss.item()
        out[split] = losses.mean()
    model.train()
    return out


def get_lr(it):
    """Linear warm-up for warmup_iters, then a cosine from learning_rate down to min_lr at lr_decay_iters."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)


# -- model, optimizer, checkpoint ------------------------------------------------------------------------------
def build(vocab_size):
    """(model, optimizer, iter_num, best_val_loss, model_args), from scratch or from out_dir/ckpt.pt."""
    model_args = dict(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        block_size=block_size,
        bias=bias,
        vocab_size=vocab_size,
        dropout=dropout,
        flash=flash,
    )
    iter_num, best_val_loss, checkpoint = 0, 1e9, None
    if init_from == "resume":
        checkpoint = torch.load(os.path.join(out_dir, "ckpt.pt"), map_location=device)
        for k in ["n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "flash"]:
            model_args[k] = checkpoint["model_args"][k]  # the shape of the saved model wins
    model = GPT(GPTConfig(**model_args))
    if checkpoint is not None:
        state_dict = checkpoint["model"]
        unwanted_prefix = "_orig_mod."  # what a compiled model's state_dict may carry
        for k, v in list(state_dict.items()):
            if k.startswith(unwanted_prefix):
                state_dict[k[len(unwanted_prefix) :]] = state_dict.pop(k)
        model.load_state_dict(state_dict)
        iter_num, best_val_loss = checkpoint["iter_num"], checkpoint["best_val_loss"]
    if block_size < model.config.block_size:
        model.crop_block_size(block_size)
        model_args["block_size"] = block_size
    model.to(device)
    optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type)
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return model, optimizer, iter_num, best_val_loss, model_args


def save_checkpoint(raw_model, optimizer, model_args, iter_num, best_val_loss):
    checkpoint = {
        "model": raw_model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_args": model_args,
        "iter_num": iter_num,
        "best_val_loss": best_val_loss,
        "config": {k: globals()[k] for k in SETTINGS},
    }
    os.makedirs(out_dir, exist_ok=True)
    torch.save(checkpoint, os.path.join(out_dir, "ckpt.pt"))


# -- the loop --------------------------------------------------------------------------------------------------
def main(**overrides):
    """Train; returns the raw model, the optimizer, the logged training losses and the evaluations."""
    global train_data, val_data, device_type
    configure(overrides)
    ddp = int(os.environ.get("RANK", -1)) != -1  # started by a launcher as one of several processes?
    if ddp:
        init_process_group(backend="gloo")
    torch.manual_seed(seed + (int(os.environ["RANK"]) if ddp else 0))
    torch.backends.cuda.matmul.allow_tf32 = True  # faster matmuls where TF32 exists
    torch.backends.cudnn.allow_tf32 = True
    device_type = "cuda" if "cuda" in device else "cpu"
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    ctx = nullcontext() if dtype == "float32" else torch.autocast(device_type=device_type, dtype=ptdtype)
    train_data, val_data, chars = load_text(data_path)

    model, optimizer, iter_num, best_val_loss, model_args = build(len(chars))
    # a no-op unless dtype is float16 (loss scaling against underflowing gradients)
    scaler = torch.amp.GradScaler(device_type, enabled=(dtype == "float16"))
    if compile:
        model = torch.compile(model)
    if ddp:
        model = DDP(model)
    raw_model = model.module if ddp else model

    history, evals = [], []
    X, Y = get_batch("train")
    t0 = time.time()
    local_iter_num = 0
    running_mfu = -1.0
    while True:
        lr = get_lr(iter_num) if decay_lr else learning_rate
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr

        if iter_num % eval_interval == 0:
            losses = estimate_loss(model, ctx)
            evals.append((iter_num, losses["train"].item(), losses["val"].item()))
            log(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            if losses["val"] < best_val_loss or always_save_checkpoint:
                best_val_loss = losses["val"]
                if iter_num > 0:
                    log(f"saving checkpoint to {out_dir}")
                    save_checkpoint(raw_model, optimizer, model_args, iter_num, best_val_loss)
        if iter_num == 0 and eval_only:
            break

        # forward and backward over several micro-batches; gradients add up
        for micro_step in range(gradient_accumulation_steps):
            with ctx:
                logits, loss = model(X, Y)
                loss = loss / gradient_accumulation_steps  # a mean over the micro-batches
            X, Y = get_batch("train")  # the next batch, fetched while the device would be busy
            scaler.scale(loss).backward()
        if grad_clip != 0.0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        t1 = time.time()
        dt, t0 = t1 - t0, t1
        if iter_num % log_interval == 0:
            lossf = loss.item() * gradient_accumulation_steps
            history.append(lossf)
            if local_iter_num >= 5:
                mfu = raw_model.estimate_mfu(batch_size * gradient_accumulation_steps, dt)
                running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
            log(f"iter {iter_num}: loss {lossf:.4f}, time {dt * 1000:.2f}ms, mfu {running_mfu * 100:.2f}%")
        iter_num += 1
        local_iter_num += 1
        if iter_num > max_iters:
            break
    if ddp:
        destroy_process_group()
    return {"model": raw_model, "optimizer": optimizer, "history": history, "evals": evals, "chars": chars}


if __name__ == "__main__":
    main(**dict(arg.split("=", 1) for arg in sys.argv[1:]))
