"""Sample text from a GPT checkpoint written by train.py, written for PyTorch.

Run as `python sample.py name=value ...` or call `main(name=value, ...)`.
"""

import os
import sys
from contextlib import nullcontext

import torch

from model import GPT, GPTConfig

out_dir = "out"
data_path = "input.txt"  # the text the model was trained on: its characters are the vocabulary
start = "\n"
num_samples = 2
max_new_tokens = 40
temperature = 0.8
top_k = 5
seed = 1337
device = "cpu"
dtype = "float32"
compile = False


def main(**overrides):
    """The generated texts, decoded."""
    for key, value in overrides.items():
        if key not in globals():
            raise KeyError(f"unknown setting {key!r}")
        globals()[key] = value
    torch.manual_seed(seed)
    device_type = "cuda" if "cuda" in device else "cpu"
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    ctx = nullcontext() if dtype == "float32" else torch.amp.autocast(device_type=device_type, dtype=ptdtype)

    checkpoint = torch.load(os.path.join(out_dir, "ckpt.pt"), map_location=device)
    model = GPT(GPTConfig(**checkpoint["model_args"]))
    state_dict = checkpoint["model"]
    unwanted_prefix = "_orig_mod."
    for k, v in list(state_dict.items()):
        if k.startswith(unwanted_prefix):
            state_dict[k[len(unwanted_prefix) :]] = state_dict.pop(k)
    model.load_state_dict(state_dict)
    model.eval()
    model.to(device)
    if compile:
        model = torch.compile(model)

    with open(data_path, encoding="utf-8") as f:
        chars = sorted(set(f.read()))
    stoi = {ch: i for i, ch in enumerate(chars)}
    encode = lambda s: [stoi[c] for c in s]  # noqa: E731
    decode = lambda ids: "".join(chars[i] for i in ids)  # noqa: E731

    x = torch.tensor(encode(start), dtype=torch.long, device=device)[None, ...]
    samples = []
    with torch.no_grad():
        with ctx:
            for k in range(num_samples):
                y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k)
                samples.append(decode(y[0].tolist()))
    return samples


if __name__ == "__main__":
    for text in main(**dict(arg.split("=", 1) for arg in sys.argv[1:])):
        print(text)
        print("---------------")
