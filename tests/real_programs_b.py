"""Small versions of six more well-known PyTorch programs, written as their authors write them, with `torch` the
library passed in (graphnn, or PyTorch itself): tests/test_real_programs_b.py runs each with both and compares.

As in classic_programs.py, each program has a `build_*(torch)` giving its model(s) (so that the test can load
graphnn's initial weights into PyTorch's) and a `train_*(torch, model(s), ..., compile=...)` running a few steps
of its training loop; `compile` wraps the program's training-step function (the identity, or graphnn.compile).
"""

from __future__ import annotations

import math
import os
import string
import unicodedata
from collections import deque, namedtuple

import numpy as np


def _identity(fn):
    return fn


# -- a. minGPT: a GPT with hand-written causal attention, AdamW groups, gradient clipping --------------------------
class GPTConfig:
    """minGPT's CfgNode, reduced to attributes."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def build_mingpt(torch):
    nn, F = torch.nn, torch.nn.functional

    class NewGELU(nn.Module):
        """The tanh approximation of GELU, as in Google's BERT and OpenAI's GPT."""

        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    class CausalSelfAttention(nn.Module):
        def __init__(self, config):
            super().__init__()
            assert config.n_embd % config.n_head == 0
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # key, query, value of all heads at once
            self.c_proj = nn.Linear(config.n_embd, config.n_embd)
            self.attn_dropout = nn.Dropout(config.attn_pdrop)
            self.resid_dropout = nn.Dropout(config.resid_pdrop)
            # the causal mask: a position attends to itself and to the positions before it
            mask = torch.tril(torch.ones(config.block_size, config.block_size))
            self.register_buffer("bias", mask.view(1, 1, config.block_size, config.block_size))
            self.n_head = config.n_head
            self.n_embd = config.n_embd

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class Block(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ln_1 = nn.LayerNorm(config.n_embd)
            self.attn = CausalSelfAttention(config)
            self.ln_2 = nn.LayerNorm(config.n_embd)
            self.mlp = nn.ModuleDict(
                dict(
                    c_fc=nn.Linear(config.n_embd, 4 * config.n_embd),
                    c_proj=nn.Linear(4 * config.n_embd, config.n_embd),
                    act=NewGELU(),
                    dropout=nn.Dropout(config.resid_pdrop),
                )
            )
            m = self.mlp
            self.mlpf = lambda x: m.dropout(m.c_proj(m.act(m.c_fc(x))))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            x = x + self.mlpf(self.ln_2(x))
            return x

    class GPT(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.block_size = config.block_size
            self.transformer = nn.ModuleDict(
                dict(
                    wte=nn.Embedding(config.vocab_size, config.n_embd),
                    wpe=nn.Embedding(config.block_size, config.n_embd),
                    drop=nn.Dropout(config.embd_pdrop),
                    h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                    ln_f=nn.LayerNorm(config.n_embd),
                )
            )
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.apply(self._init_weights)
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):  # scaled init of the residual projections, per GPT-2
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
            self.n_params = sum(p.numel() for p in self.transformer.parameters())

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                torch.nn.init.zeros_(module.bias)
                torch.nn.init.ones_(module.weight)

        def configure_optimizers(self, train_config):
            """Weights of Linear layers decay; biases, LayerNorm and Embedding weights do not."""
            decay, no_decay = set(), set()
            whitelist_weight_modules = (torch.nn.Linear,)
            blacklist_weight_modules = (torch.nn.LayerNorm, torch.nn.Embedding)
            for mn, m in self.named_modules():
                for pn, _p in m.named_parameters():
                    fpn = "%s.%s" % (mn, pn) if mn else pn  # noqa: UP031 (as minGPT writes it)
                    if pn.endswith("bias"):
                        no_decay.add(fpn)
                    elif pn.endswith("weight") and isinstance(m, whitelist_weight_modules):
                        decay.add(fpn)
                    elif pn.endswith("weight") and isinstance(m, blacklist_weight_modules):
                        no_decay.add(fpn)
            param_dict = {pn: p for pn, p in self.named_parameters()}
            inter_params = decay & no_decay
            union_params = decay | no_decay
            assert len(inter_params) == 0, f"parameters {inter_params} made it into both sets"
            assert len(param_dict.keys() - union_params) == 0, "some parameters were not separated"
            optim_groups = [
                {"params": [param_dict[pn] for pn in sorted(list(decay))], "weight_decay": train_config.weight_decay},
                {"params": [param_dict[pn] for pn in sorted(list(no_decay))], "weight_decay": 0.0},
            ]
            return torch.optim.AdamW(optim_groups, lr=train_config.learning_rate, betas=train_config.betas)

        def forward(self, idx, targets=None):
            device = idx.device
            b, t = idx.size()
            assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
            pos = torch.arange(0, t, dtype=torch.long, device=device).unsqueeze(0)
            tok_emb = self.transformer.wte(idx)
            pos_emb = self.transformer.wpe(pos)
            x = self.transformer.drop(tok_emb + pos_emb)
            for block in self.transformer.h:
                x = block(x)
            x = self.transformer.ln_f(x)
            logits = self.lm_head(x)
            loss = None
            if targets is not None:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss

        @torch.no_grad()
        def generate(self, idx, max_new_tokens, temperature=1.0, do_sample=False, top_k=None):
            for _ in range(max_new_tokens):
                idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size :]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, top_k)
                    logits[logits < v[:, [-1]]] = -float("Inf")
                probs = F.softmax(logits, dim=-1)
                if do_sample:
                    idx_next = torch.multinomial(probs, num_samples=1)
                else:
                    _, idx_next = torch.topk(probs, k=1, dim=-1)
                idx = torch.cat((idx, idx_next), dim=1)
            return idx

    config = GPTConfig(
        vocab_size=3, block_size=11, n_layer=2, n_head=2, n_embd=16, embd_pdrop=0.1, resid_pdrop=0.1, attn_pdrop=0.1
    )
    return GPT(config)


def sort_dataset(torch, problems: np.ndarray):
    """minGPT's sorting task: a sequence of digits, then the same digits sorted; only the sorted half is predicted
    (targets -1 elsewhere). `problems` holds the unsorted inputs (the program draws them with torch.randint)."""

    class SortDataset(torch.utils.data.Dataset):
        def __init__(self, length=6, num_digits=3):
            self.length, self.num_digits = length, num_digits

        def __len__(self):
            return len(problems)

        def get_vocab_size(self):
            return self.num_digits

        def get_block_size(self):
            return self.length * 2 - 1

        def __getitem__(self, idx):
            inp = torch.tensor(problems[idx], dtype=torch.long)
            sol = torch.sort(inp)[0]
            cat = torch.cat((inp, sol), dim=0)
            x = cat[:-1].clone()
            y = cat[1:].clone()
            y[: self.length - 1] = -1  # only the output half is a target
            return x, y

    return SortDataset()


def train_mingpt(torch, model, problems, steps=4, compile=_identity):
    dataset = sort_dataset(torch, problems)
    tc = GPTConfig(learning_rate=5e-3, betas=(0.9, 0.95), weight_decay=0.1, grad_norm_clip=1.0, batch_size=4)
    optimizer = model.configure_optimizers(tc)
    train_loader = torch.utils.data.DataLoader(
        dataset,
        sampler=torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=int(1e10)),
        shuffle=False,
        pin_memory=True,
        batch_size=tc.batch_size,
        num_workers=0,
    )

    def train_step(x, y):
        logits, loss = model(x, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_norm_clip)
        optimizer.step()
        return loss

    step = compile(train_step)
    model.train()
    losses = []
    data_iter = iter(train_loader)
    for _ in range(steps):
        try:
            batch = next(data_iter)
        except StopIteration:
            data_iter = iter(train_loader)
            batch = next(data_iter)
        batch = [t.to("cpu") for t in batch]
        x, y = batch
        losses.append(step(x, y).item())
    model.eval()
    x, _ = dataset[0]
    with torch.no_grad():
        out = model.generate(x[:6].unsqueeze(0), 5, do_sample=False)
    return {"losses": losses, "generated": out[0, 6:].tolist(), "n_params": model.n_params}


# -- b. Vision transformer: patches by a strided convolution, a class token, nn.TransformerEncoder -----------------
def build_vit(torch, image_size=8, patch_size=4, num_classes=5, dim=16, depth=2, heads=2):
    nn = torch.nn

    class PatchEmbed(nn.Module):
        def __init__(self, img_size, patch_size, in_chans, embed_dim):
            super().__init__()
            self.num_patches = (img_size // patch_size) ** 2
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)  # B, N, D

    class VisionTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = PatchEmbed(image_size, patch_size, 3, dim)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, dim))
            self.pos_drop = nn.Dropout(p=0.0)
            layer = nn.TransformerEncoderLayer(
                d_model=dim,
                nhead=heads,
                dim_feedforward=dim * 2,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, num_classes)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            self.apply(self._init_weights)

        def _init_weights(self, m):
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0)
                nn.init.constant_(m.weight, 1.0)

        def forward(self, x):
            B = x.shape[0]
            x = self.patch_embed(x)
            cls_tokens = self.cls_token.expand(B, -1, -1)
            x = torch.cat((cls_tokens, x), dim=1)
            x = self.pos_drop(x + self.pos_embed)
            x = self.encoder(x)
            x = self.norm(x)
            return self.head(x[:, 0])

    return VisionTransformer()


def train_vit(torch, model, images, labels, schedule="warmup_cosine", compile=_identity):
    nn = torch.nn
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4, shuffle=False)
    epochs, warmup = 2, 2
    total = epochs * len(loader)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    if schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=total, pct_start=0.3)
    elif schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=1e-5)
    else:

        def lr_lambda(step):
            if step < warmup:
                return float(step + 1) / float(warmup)
            progress = float(step - warmup) / float(max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

    def train_step(inputs, targets):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        return loss, outputs

    step = compile(train_step)
    losses, lrs, correct = [], [], 0
    for _epoch in range(epochs):
        model.train()
        train_loss = 0.0
        for inputs, targets in loader:
            loss, outputs = step(inputs, targets)
            scheduler.step()
            lrs.append(scheduler.get_last_lr()[0])
            train_loss += loss.item()
            _, predicted = outputs.max(1)
            correct += predicted.eq(targets).sum().item()
            losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(images)
    return {"losses": losses, "lrs": lrs, "correct": correct, "logits": logits}


# -- c. ResNet-18-like: BasicBlocks, Kaiming init, SGD with Nesterov momentum, checkpoints -------------------------
def build_resnet(torch, widths=(4, 8), num_classes=5):
    nn = torch.nn

    def conv3x3(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    def conv1x1(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.conv1(x)
            out = self.bn1(out)
            out = self.relu(out)
            out = self.conv2(out)
            out = self.bn2(out)
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            out = self.relu(out)
            return out

    class ResNet(nn.Module):
        def __init__(self, block, layers, zero_init_residual=True):
            super().__init__()
            self.inplanes = widths[0]
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)  # CIFAR stem
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(block, widths[0], layers[0])
            self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[1] * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
            if zero_init_residual:
                for m in self.modules():
                    if isinstance(m, BasicBlock) and m.bn2.weight is not None:
                        nn.init.constant_(m.bn2.weight, 0)

        def _make_layer(self, block, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
                )
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(block(self.inplanes, planes))
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer1(x)
            x = self.layer2(x)
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            return self.fc(x)

    return ResNet(BasicBlock, [2, 2])


def accuracy(torch, output, target, topk=(1,)):
    """The precision at k of the ImageNet example."""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


class AverageMeter:
    def __init__(self, name):
        self.name = name
        self.reset()

    def reset(self):
        self.val = self.avg = self.sum = 0.0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def train_resnet(torch, model, images, labels, save_dir, compile=_identity, build=None):
    nn = torch.nn
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    criterion = nn.CrossEntropyLoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    data = torch.utils.data.TensorDataset(images[:12], labels[:12])
    train_loader = torch.utils.data.DataLoader(data, batch_size=6, shuffle=False)
    val = (images[12:], labels[12:])

    def train_step(images, target):
        output = model(images)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return output, loss

    step = compile(train_step)

    def validate():
        top1, top3 = AverageMeter("Acc@1"), AverageMeter("Acc@3")
        model.eval()
        with torch.no_grad():
            output = model(val[0].to(device, non_blocking=True))
            loss = criterion(output, val[1])
            acc1, acc3 = accuracy(torch, output, val[1], topk=(1, 3))
            top1.update(acc1[0], val[0].size(0))
            top3.update(acc3[0], val[0].size(0))
            pred = output.argmax(dim=1, keepdim=True)
            correct = pred.eq(val[1].view_as(pred)).sum().item()
        return loss.item(), float(top1.avg), float(top3.avg), correct

    def run_epoch(epoch):
        losses = AverageMeter("Loss")
        model.train()
        out = []
        for images, target in train_loader:
            images = images.to(device, non_blocking=True)
            target = target.to(device, non_blocking=True)
            output, loss = step(images, target)
            acc1, _ = accuracy(torch, output, target, topk=(1, 3))
            losses.update(loss.item(), images.size(0))
            out.append((loss.item(), acc1[0].item()))
        scheduler.step()
        return out

    history = run_epoch(0)
    evals = [validate()]
    path = os.path.join(save_dir, "checkpoint.pth.tar")
    torch.save(
        {
            "epoch": 1,
            "arch": "resnet18",
            "state_dict": model.state_dict(),
            "best_acc1": evals[0][1],
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        path,
    )
    # resume in a fresh model and optimizer, as `--resume` does
    model = build(torch) if build is not None else model
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    start_epoch = checkpoint["epoch"]
    model.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    step = compile(train_step)
    for epoch in range(start_epoch, 2):
        history += run_epoch(epoch)
    evals.append(validate())
    return {"history": history, "evals": evals, "lr": optimizer.param_groups[0]["lr"]}


# -- d. Reinforcement learning: REINFORCE and actor-critic on a tiny hand-written environment -----------------------
class LineWorld:
    """A cart on a line: the state is (position, velocity, target, bias), the actions push left or right; an
    episode ends after `horizon` steps or when the cart leaves [-2, 2]. Reward 1 per step, plus closeness."""

    def __init__(self, seed=0, horizon=8):
        self.rng = np.random.default_rng(seed)
        self.horizon = horizon

    def reset(self):
        self.t = 0
        self.state = np.array([self.rng.uniform(-0.5, 0.5), 0.0, self.rng.uniform(-1, 1), 1.0])
        return self.state.copy(), {}

    def step(self, action):
        pos, vel, target, one = self.state
        vel = 0.8 * vel + (0.3 if action == 1 else -0.3)
        pos = pos + vel
        self.state = np.array([pos, vel, target, one])
        self.t += 1
        terminated = abs(pos) > 2.0
        truncated = self.t >= self.horizon
        reward = 1.0 - 0.25 * abs(pos - target)
        return self.state.copy(), reward, terminated, truncated, {}


def build_reinforce(torch):
    nn, F = torch.nn, torch.nn.functional

    class Policy(nn.Module):
        def __init__(self):
            super().__init__()
            self.affine1 = nn.Linear(4, 16)
            self.dropout = nn.Dropout(p=0.6)
            self.affine2 = nn.Linear(16, 2)
            self.saved_log_probs = []
            self.rewards = []

        def forward(self, x):
            x = self.affine1(x)
            x = self.dropout(x)
            x = F.relu(x)
            action_scores = self.affine2(x)
            return F.softmax(action_scores, dim=1)

    return Policy()


def train_reinforce(torch, policy, episodes=3, gamma=0.99):
    Categorical = torch.distributions.Categorical  # noqa: N806 (`from torch.distributions import Categorical`)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    eps = np.finfo(np.float32).eps.item()
    env = LineWorld(seed=1)

    def select_action(state):
        state = torch.from_numpy(state).float().unsqueeze(0)
        probs = policy(state)
        m = Categorical(probs)
        action = m.sample()
        policy.saved_log_probs.append(m.log_prob(action))
        return action.item()

    def finish_episode():
        R = 0
        policy_loss = []
        returns = deque()
        for r in policy.rewards[::-1]:
            R = r + gamma * R
            returns.appendleft(R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        for log_prob, R in zip(policy.saved_log_probs, returns):
            policy_loss.append(-log_prob * R)
        optimizer.zero_grad()
        policy_loss = torch.cat(policy_loss).sum()
        policy_loss.backward()
        optimizer.step()
        del policy.rewards[:]
        del policy.saved_log_probs[:]
        return policy_loss.item()

    running_reward = 10
    history = []
    for _i_episode in range(episodes):
        state, _ = env.reset()
        ep_reward, actions = 0, []
        for _t in range(1, 10000):
            action = select_action(state)
            actions.append(action)
            state, reward, done, truncated, _ = env.step(action)
            policy.rewards.append(reward)
            ep_reward += reward
            if done or truncated:
                break
        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        history.append((actions, finish_episode(), running_reward))
    return history


SavedAction = namedtuple("SavedAction", ["log_prob", "value"])


def build_actor_critic(torch):
    nn, F = torch.nn, torch.nn.functional

    class Policy(nn.Module):
        """Actor and critic in one model: a shared layer, an action head and a value head."""

        def __init__(self):
            super().__init__()
            self.affine1 = nn.Linear(4, 16)
            self.action_head = nn.Linear(16, 2)
            self.value_head = nn.Linear(16, 1)
            self.saved_actions = []
            self.rewards = []

        def forward(self, x):
            x = F.relu(self.affine1(x))
            action_prob = F.softmax(self.action_head(x), dim=-1)
            state_values = self.value_head(x)
            return action_prob, state_values

    return Policy()


def train_actor_critic(torch, model, episodes=3, gamma=0.99):
    F = torch.nn.functional
    from_dist = torch.distributions
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    eps = np.finfo(np.float32).eps.item()
    env = LineWorld(seed=2)

    def select_action(state):
        state = torch.from_numpy(state).float()
        probs, state_value = model(state)
        m = from_dist.Categorical(probs)
        action = m.sample()
        model.saved_actions.append(SavedAction(m.log_prob(action), state_value))
        model.entropies.append(m.entropy())
        return action.item()

    def finish_episode():
        R = 0
        saved_actions = model.saved_actions
        policy_losses, value_losses, returns = [], [], []
        for r in model.rewards[::-1]:
            R = r + gamma * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        for (log_prob, value), R in zip(saved_actions, returns):
            advantage = R - value.item()
            policy_losses.append(-log_prob * advantage)
            value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))
        optimizer.zero_grad()
        entropy = torch.stack(model.entropies).mean()
        loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum() - 0.01 * entropy
        loss.backward()
        optimizer.step()
        del model.rewards[:]
        del model.saved_actions[:]
        del model.entropies[:]
        return loss.item()

    model.entropies = []
    history = []
    for _ in range(episodes):
        state, _ = env.reset()
        actions = []
        for _t in range(1, 10000):
            action = select_action(state)
            actions.append(action)
            state, reward, done, truncated, _ = env.step(action)
            model.rewards.append(reward)
            if done or truncated:
                break
        history.append((actions, finish_episode()))
    return history


# -- e. Sequence to sequence with Bahdanau attention (the translation tutorial) ------------------------------------
SOS_token, EOS_token, MAX_LENGTH = 0, 1, 5


def build_seq2seq(torch, input_size=9, output_size=8, hidden_size=12):
    nn, F = torch.nn, torch.nn.functional

    class EncoderRNN(nn.Module):
        def __init__(self, input_size, hidden_size, dropout_p=0.1):
            super().__init__()
            self.hidden_size = hidden_size
            self.embedding = nn.Embedding(input_size, hidden_size)
            self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
            self.dropout = nn.Dropout(dropout_p)

        def forward(self, input):
            embedded = self.dropout(self.embedding(input))
            output, hidden = self.gru(embedded)
            return output, hidden

    class BahdanauAttention(nn.Module):
        def __init__(self, hidden_size):
            super().__init__()
            self.Wa = nn.Linear(hidden_size, hidden_size)
            self.Ua = nn.Linear(hidden_size, hidden_size)
            self.Va = nn.Linear(hidden_size, 1)

        def forward(self, query, keys):
            scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
            scores = scores.squeeze(2).unsqueeze(1)
            weights = F.softmax(scores, dim=-1)
            context = torch.bmm(weights, keys)
            return context, weights

    class AttnDecoderRNN(nn.Module):
        def __init__(self, hidden_size, output_size, dropout_p=0.1):
            super().__init__()
            self.embedding = nn.Embedding(output_size, hidden_size)
            self.attention = BahdanauAttention(hidden_size)
            self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
            self.out = nn.Linear(hidden_size, output_size)
            self.dropout = nn.Dropout(dropout_p)

        def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
            batch_size = encoder_outputs.size(0)
            decoder_input = torch.empty(batch_size, 1, dtype=torch.long, device="cpu").fill_(SOS_token)
            decoder_hidden = encoder_hidden
            decoder_outputs = []
            attentions = []
            for i in range(MAX_LENGTH):
                decoder_output, decoder_hidden, attn_weights = self.forward_step(
                    decoder_input, decoder_hidden, encoder_outputs
                )
                decoder_outputs.append(decoder_output)
                attentions.append(attn_weights)
                if target_tensor is not None:
                    decoder_input = target_tensor[:, i].unsqueeze(1)  # teacher forcing
                else:
                    _, topi = decoder_output.topk(1)
                    decoder_input = topi.squeeze(-1).detach()  # its own prediction is the next input
            decoder_outputs = torch.cat(decoder_outputs, dim=1)
            decoder_outputs = F.log_softmax(decoder_outputs, dim=-1)
            attentions = torch.cat(attentions, dim=1)
            return decoder_outputs, decoder_hidden, attentions

        def forward_step(self, input, hidden, encoder_outputs):
            embedded = self.dropout(self.embedding(input))
            query = hidden.permute(1, 0, 2)
            context, attn_weights = self.attention(query, encoder_outputs)
            input_gru = torch.cat((embedded, context), dim=2)
            output, hidden = self.gru(input_gru, hidden)
            output = self.out(output)
            return output, hidden, attn_weights

    return EncoderRNN(input_size, hidden_size), AttnDecoderRNN(hidden_size, output_size)


def train_seq2seq(torch, models, input_ids, target_ids, epochs=2, compile=_identity):
    nn = torch.nn
    encoder, decoder = models
    train_data = torch.utils.data.TensorDataset(torch.LongTensor(input_ids), torch.LongTensor(target_ids))
    train_sampler = torch.utils.data.SequentialSampler(train_data)
    train_dataloader = torch.utils.data.DataLoader(train_data, sampler=train_sampler, batch_size=4)
    encoder_optimizer = torch.optim.Adam(encoder.parameters(), lr=0.01)
    decoder_optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.NLLLoss()

    def train_step(input_tensor, target_tensor):
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        encoder_outputs, encoder_hidden = encoder(input_tensor)
        decoder_outputs, _, _ = decoder(encoder_outputs, encoder_hidden, target_tensor)
        loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)), target_tensor.view(-1))
        loss.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()
        return loss

    step = compile(train_step)
    losses = []
    for _epoch in range(epochs):
        total_loss = 0
        for data in train_dataloader:
            input_tensor, target_tensor = data
            loss = step(input_tensor, target_tensor)
            total_loss += loss.item()
        losses.append(total_loss / len(train_dataloader))

    def evaluate(sentence_ids):
        with torch.no_grad():
            input_tensor = torch.tensor(sentence_ids, dtype=torch.long, device="cpu").view(1, -1)
            encoder_outputs, encoder_hidden = encoder(input_tensor)
            decoder_outputs, decoder_hidden, decoder_attn = decoder(encoder_outputs, encoder_hidden)
            _, topi = decoder_outputs.topk(1)
            decoded_ids = topi.squeeze()
            decoded = []
            for idx in decoded_ids:
                if idx.item() == EOS_token:
                    decoded.append("<EOS>")
                    break
                decoded.append(idx.item())
        return decoded, decoder_attn

    encoder.eval()
    decoder.eval()
    decoded, attn = evaluate(list(input_ids[0]))
    return {"losses": losses, "decoded": decoded, "attention": attn}


# -- f. Classifying names with a character-level RNN (the char-RNN tutorial) ---------------------------------------
all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)


def unicode_to_ascii(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn" and c in all_letters)


def build_char_rnn(torch, n_hidden=16, n_categories=3):
    nn = torch.nn

    class RNN(nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.hidden_size = hidden_size
            self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
            self.i2o = nn.Linear(input_size + hidden_size, output_size)
            self.softmax = nn.LogSoftmax(dim=1)

        def forward(self, input, hidden):
            combined = torch.cat((input, hidden), 1)
            hidden = self.i2h(combined)
            output = self.i2o(combined)
            output = self.softmax(output)
            return output, hidden

        def initHidden(self):  # noqa: N802 (the tutorial's name)
            return torch.zeros(1, self.hidden_size)

    return RNN(n_letters, n_hidden, n_categories)


NAMES = {
    "French": ["Bélanger", "Lefèvre", "Dubois"],
    "Italian": ["Rossi", "Bianchi", "Ricci"],
    "Polish": ["Łukasik", "Żak", "Nowak"],
}


def train_char_rnn(torch, rnn, compile=_identity, iters=6):
    all_categories = list(NAMES)
    category_lines = {k: [unicode_to_ascii(n) for n in v] for k, v in NAMES.items()}
    n_categories = len(all_categories)

    def letter_to_index(letter):
        return all_letters.find(letter)

    def line_to_tensor(line):
        tensor = torch.zeros(len(line), 1, n_letters)
        for li, letter in enumerate(line):
            tensor[li][0][letter_to_index(letter)] = 1
        return tensor

    def category_from_output(output):
        top_n, top_i = output.topk(1)
        category_i = top_i[0].item()
        return all_categories[category_i], category_i

    criterion = torch.nn.NLLLoss()
    learning_rate = 0.05

    def train(category_tensor, line_tensor):
        hidden = rnn.initHidden()
        rnn.zero_grad()
        for i in range(line_tensor.size()[0]):
            output, hidden = rnn(line_tensor[i], hidden)
        loss = criterion(output, category_tensor)
        loss.backward()
        # add the parameters' gradients, times the learning rate, to their values
        for p in rnn.parameters():
            p.data.add_(p.grad.data, alpha=-learning_rate)
        return output, loss

    step = compile(train)
    losses, guesses = [], []
    order = [(c, line) for c in all_categories for line in category_lines[c]]
    for it in range(iters):
        category, line = order[(it * 4) % len(order)]
        category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
        line_tensor = line_to_tensor(line)
        output, loss = step(category_tensor, line_tensor)
        losses.append(loss.item())
        guesses.append(category_from_output(output))

    def evaluate(line_tensor):
        hidden = rnn.initHidden()
        for i in range(line_tensor.size()[0]):
            output, hidden = rnn(line_tensor[i], hidden)
        return output

    confusion = torch.zeros(n_categories, n_categories)
    predictions = []
    with torch.no_grad():
        for category, line in order:
            output = evaluate(line_to_tensor(line))
            guess, guess_i = category_from_output(output)
            category_i = all_categories.index(category)
            confusion[category_i][guess_i] += 1
            topv, topi = output.topk(2, 1, True)
            predictions.append([(topv[0][i].item(), all_categories[topi[0][i].item()]) for i in range(2)])
    for i in range(n_categories):
        confusion[i] = confusion[i] / confusion[i].sum()
    return {"losses": losses, "guesses": guesses, "confusion": confusion, "predictions": predictions}
