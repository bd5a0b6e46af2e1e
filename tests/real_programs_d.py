"""Small versions of seven more PyTorch programs, written as their authors write them, with `torch` the library
passed in (graphnn, or PyTorch itself): tests/test_real_programs_d.py runs each with both and compares.

These are other variants of programs classic_programs.py already has (a convolutional VAE sampled from, a style
network with a total-variation loss, ESPCN with PixelUnshuffle, a two-cell sequence predictor trained with Adam
or L-BFGS with a line search, forward-forward with per-layer optimizers) and new ones (a siamese network with
metric-learning losses, a data pipeline with custom datasets, samplers and chained schedulers that saves a
checkpoint and resumes from it). Each has a `build_*(torch)` and a `train_*(torch, model(s), ..., compile=...)`.
"""

from __future__ import annotations

import math

import numpy as np


def _identity(fn):
    return fn


# -- a. convolutional VAE on MNIST-shaped images, sampled from and interpolated in its latent space -----------------
LATENT = 4


def build_conv_vae(torch, latent=LATENT):
    nn, F = torch.nn, torch.nn.functional

    class ConvVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(
                nn.Conv2d(1, 4, 4, stride=2, padding=1),  # 28 -> 14
                nn.LeakyReLU(0.2),
                nn.Conv2d(4, 8, 4, stride=2, padding=1),  # 14 -> 7
                nn.LeakyReLU(0.2),
                nn.Flatten(),
            )
            self.to_stats = nn.Linear(8 * 7 * 7, 2 * latent)
            self.from_z = nn.Linear(latent, 8 * 7 * 7)
            self.dec = nn.Sequential(
                nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),  # 7 -> 14
                nn.ReLU(),
                nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1),  # 14 -> 28
            )

        def encode(self, x):
            mu, logvar = self.to_stats(self.enc(x)).chunk(2, dim=1)
            return mu, logvar

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return eps.mul(std).add_(mu)

        def decode(self, z):
            h = F.relu(self.from_z(z)).view(-1, 8, 7, 7)
            return torch.sigmoid(self.dec(h))

        def forward(self, x):
            mu, logvar = self.encode(x)
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    return ConvVAE()


def conv_vae_loss(torch, recon_x, x, mu, logvar):
    F = torch.nn.functional
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld, bce, kld


def train_conv_vae(torch, model, images, compile=_identity):
    """images: float32 (N, 1, 28, 28) in [0, 1]."""
    data = torch.from_numpy(images)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=4, shuffle=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def train_step(x):
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        loss, bce, kld = conv_vae_loss(torch, recon, x, mu, logvar)
        loss.backward()
        optimizer.step()
        return loss, bce, kld

    step = compile(train_step)
    losses = []
    model.train()
    for _epoch in range(2):
        for (x,) in loader:
            loss, bce, kld = step(x)
            losses.append([loss.item() / len(x), bce.item(), kld.item()])
    model.eval()
    with torch.no_grad():
        sample = model.decode(torch.randn(3, LATENT))  # new digits
        mu, _ = model.encode(data[:2])
        w = torch.linspace(0, 1, 5).unsqueeze(1)
        path = torch.lerp(mu[0:1].expand(5, -1), mu[1:2].expand(5, -1), w)  # a walk between two codes
        walk = model.decode(path)
        grid = torch.cat([sample, walk], 0).view(-1, 28 * 28)
    return {"losses": losses, "sample": sample, "walk": walk, "grid_max": grid.max(1).values}


# -- b. a fast-neural-style network with a total-variation loss ------------------------------------------------------
def build_small_style(torch):
    nn, F = torch.nn, torch.nn.functional

    class PadConv(nn.Module):
        def __init__(self, cin, cout, k, stride=1, upsample=None):
            super().__init__()
            self.pad, self.upsample = k // 2, upsample
            self.conv = nn.Conv2d(cin, cout, k, stride)

        def forward(self, x):
            if self.upsample:
                x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
            return self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))

    class StyleNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.n1 = PadConv(3, 4, 5), nn.InstanceNorm2d(4, affine=True)
            self.c2, self.n2 = PadConv(4, 6, 3, stride=2), nn.InstanceNorm2d(6, affine=True)
            self.r1, self.rn1 = PadConv(6, 6, 3), nn.InstanceNorm2d(6, affine=True)
            self.u1, self.un1 = PadConv(6, 4, 3, upsample=2), nn.InstanceNorm2d(4, affine=True)
            self.out = PadConv(4, 3, 5)

        def forward(self, x):
            y = F.relu(self.n1(self.c1(x)))
            y = F.relu(self.n2(self.c2(y)))
            y = y + self.rn1(self.r1(y))
            y = F.relu(self.un1(self.u1(y)))
            return self.out(y)

    class Loss(nn.Module):
        """A fixed random feature network (the program uses VGG) whose parameters do not train."""

        def __init__(self):
            super().__init__()
            self.f1 = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU())
            self.f2 = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(5, 6, 3, padding=1), nn.ReLU())
            self.requires_grad_(False)

        def forward(self, x):
            a = self.f1(x)
            return [a, self.f2(a)]

    return StyleNet(), Loss()


def gram(torch, y):
    b, c, h, w = y.shape
    f = y.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)).div(c * h * w)


def total_variation(torch, img):
    return torch.sum(torch.abs(img[:, :, :, :-1] - img[:, :, :, 1:])) + torch.sum(
        torch.abs(img[:, :, :-1, :] - img[:, :, 1:, :])
    )


def train_small_style(torch, nets, content, style, steps=3, compile=_identity):
    net, features = nets
    F = torch.nn.functional
    content, style = torch.from_numpy(content), torch.from_numpy(style)
    with torch.no_grad():
        style_grams = [gram(torch, f) for f in features(style)]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

    def train_step(x):
        optimizer.zero_grad()
        y = net(x)
        fy, fx = features(y), features(x)
        content_loss = F.mse_loss(fy[1], fx[1])
        style_loss = sum(F.mse_loss(gram(torch, a), g.expand_as(gram(torch, a))) for a, g in zip(fy, style_grams))
        tv_loss = total_variation(torch, y)
        loss = content_loss + 50.0 * style_loss + 1e-3 * tv_loss
        loss.backward()
        optimizer.step()
        return loss, tv_loss

    step = compile(train_step)
    history = []
    for _ in range(steps):
        loss, tv = step(content)
        history.append([loss.item(), tv.item()])
    net.eval()
    with torch.no_grad():
        out = net(content[:1]).clamp(0, 1).mul(255)
    return {"history": history, "stylized": out}


# -- c. ESPCN: sub-pixel convolution (F.pixel_shuffle) on PixelUnshuffle'd inputs, orthogonal initialization ---------
def build_espcn(torch, r=2):
    nn = torch.nn

    class ESPCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.space_to_depth = nn.PixelUnshuffle(2)
            self.body = nn.Sequential(
                nn.Conv2d(4, 8, 5, padding=2), nn.Tanh(), nn.Conv2d(8, 6, 3, padding=1), nn.Tanh()
            )
            self.tail = nn.Conv2d(6, 4 * r * r, 3, padding=1)
            self.r = r
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain("tanh"))
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = self.space_to_depth(x)
            y = self.tail(self.body(x))
            y = torch.nn.functional.pixel_shuffle(y, self.r)  # (N, 4, 2H', 2W')
            return torch.nn.functional.pixel_shuffle(y, 2)  # undo the unshuffle

    return ESPCN()


def train_espcn(torch, model, low, high, compile=_identity):
    low, high = torch.from_numpy(low), torch.from_numpy(high)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 3], gamma=0.5)
    criterion = torch.nn.MSELoss()

    def train_step(x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)
    losses, mses, psnr, lrs = [], [], [], []
    for _epoch in range(4):
        for i in range(0, len(low), 2):
            losses.append(step(low[i : i + 2], high[i : i + 2]).item())
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(model(low), high)
            mses.append(mse.item())
            psnr.append(10 * math.log10(1.0 / mse.item()))
    return {"losses": losses, "mse": mses, "psnr": psnr, "lrs": lrs}


# -- d. a siamese network: triplet, cosine-embedding and contrastive losses, cdist mining --------------------------
def build_siamese(torch, n_in=10, n_emb=6):
    nn, F = torch.nn, torch.nn.functional

    class EmbeddingNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(n_in, 16), nn.PReLU(), nn.Linear(16, n_emb))

        def forward(self, x):
            return F.normalize(self.fc(x), p=2, dim=1)

    class SiameseNet(nn.Module):
        def __init__(self, embedding_net):
            super().__init__()
            self.embedding_net = embedding_net

        def forward(self, x1, x2):
            return self.embedding_net(x1), self.embedding_net(x2)

        def get_embedding(self, x):
            return self.embedding_net(x)

    return SiameseNet(EmbeddingNet())


class ContrastiveLoss:
    """Pairs with target 1 are pulled together, pairs with target 0 pushed at least `margin` apart."""

    def __init__(self, torch, margin=1.0):
        self.torch, self.margin = torch, margin

    def __call__(self, out1, out2, target):
        F = self.torch.nn.functional
        d = F.pairwise_distance(out1, out2)
        loss = target * d.pow(2) + (1 - target) * F.relu(self.margin - d).pow(2)
        return 0.5 * loss.mean()


def hardest_triplets(torch, emb, labels):
    """Batch-hard mining: for each anchor its farthest positive and nearest negative, from torch.cdist."""
    d = torch.cdist(emb, emb)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    pos = d.masked_fill(~same, -1.0).argmax(1)
    neg = d.masked_fill(same, float("inf")).argmin(1)
    return pos, neg


def train_siamese(torch, model, x, labels, pairs, compile=_identity):
    x, labels = torch.from_numpy(x), torch.from_numpy(labels)
    i1, i2 = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    similar = (labels[i1] == labels[i2]).float()
    triplet = torch.nn.TripletMarginLoss(margin=0.5, p=2)
    cosine = torch.nn.CosineEmbeddingLoss(margin=0.1)
    contrastive = ContrastiveLoss(torch, margin=1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def train_step(a, b, y, anchor, positive, negative):
        optimizer.zero_grad()
        o1, o2 = model(a, b)
        l_con = contrastive(o1, o2, y)
        l_cos = cosine(o1, o2, 2 * y - 1)  # targets in {-1, 1}
        ea, ep = model(anchor, positive)
        en = model.get_embedding(negative)
        l_tri = triplet(ea, ep, en)
        loss = l_con + l_cos + l_tri
        loss.backward()
        optimizer.step()
        return loss, l_con, l_cos, l_tri

    step = compile(train_step)
    history = []
    for _ in range(4):
        with torch.no_grad():
            pos, neg = hardest_triplets(torch, model.get_embedding(x), labels)
        out = step(x[i1], x[i2], similar, x, x[pos], x[neg])
        history.append([v.item() for v in out])
    with torch.no_grad():
        emb = model.get_embedding(x)
        dist = torch.cdist(emb, emb, p=2)
        nearest = dist.fill_diagonal_(float("inf")).argmin(1)
        cos = torch.nn.functional.cosine_similarity(emb[i1], emb[i2])
    return {"history": history, "nearest": nearest, "cos": cos, "dist": torch.pairwise_distance(emb[:4], emb[4:8])}


# -- e. time-sequence prediction: two LSTMCells, Adam in float32 or L-BFGS with a strong-Wolfe line search --------
def build_sequence2(torch, hidden=10, dtype="float32"):
    nn = torch.nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, hidden)
            self.lstm2 = nn.LSTMCell(hidden, hidden)
            self.linear = nn.Linear(hidden, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = input.new_zeros(input.size(0), hidden)
            c_t = torch.zeros_like(h_t)
            h_t2, c_t2 = h_t.clone(), c_t.clone()
            output = None
            for i in range(input.size(1)):
                h_t, c_t = self.lstm1(input[:, i : i + 1], (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs.append(output)
            for _ in range(future):
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs.append(output)
            return torch.stack(outputs, 1).squeeze(2)

    return Sequence().to(getattr(torch, dtype))


def sine_waves(n=6, length=10, seed=0, dtype=np.float32):
    r = np.random.default_rng(seed)
    t = np.arange(length) + r.integers(-8, 8, (n, 1))
    return np.sin(t / 2.5).astype(dtype)


def train_sequence2(torch, seq, data, optimizer_name="adam", steps=3, compile=_identity):
    data = torch.from_numpy(data)
    input, target = data[2:, :-1], data[2:, 1:]
    test_input, test_target = data[:2, :-1], data[:2, 1:]
    criterion = torch.nn.MSELoss()
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(seq.parameters(), lr=0.02)
    else:
        optimizer = torch.optim.LBFGS(seq.parameters(), lr=1, max_iter=3, line_search_fn="strong_wolfe")

    def loss_and_grad(input, target):
        optimizer.zero_grad()
        loss = criterion(seq(input), target)
        loss.backward()
        return loss

    compiled = compile(loss_and_grad)
    losses, test_losses = [], []
    for _ in range(steps):

        def closure():
            loss = compiled(input, target)
            losses.append(loss.item())
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            future = 4
            pred = seq(test_input, future=future)
            test_losses.append(criterion(pred[:, :-future], test_target).item())
    return {"losses": losses, "test_losses": test_losses, "prediction": pred.detach()}


# -- f. forward-forward with a ModuleList of layers, each with its own optimizer, trained batch by batch -----------
def build_ff_layers(torch, dims=(16, 12, 12)):
    nn, F = torch.nn, torch.nn.functional

    class FFLayer(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.linear = nn.Linear(n_in, n_out)

        def forward(self, x):
            return F.relu(self.linear(F.normalize(x, dim=1)))

    class FFNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(FFLayer(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.threshold = 1.5

        def layer_loss(self, layer, x_pos, x_neg):
            g_pos = layer(x_pos).pow(2).sum(1)
            g_neg = layer(x_neg).pow(2).sum(1)
            return F.softplus(torch.cat([self.threshold - g_pos, g_neg - self.threshold])).mean()

        @torch.no_grad()
        def goodness(self, x):
            total = torch.zeros(x.size(0))
            for layer in self.layers:
                x = layer(x)
                total += x.pow(2).sum(1)
            return total

    return FFNet()


def embed_label(torch, x, y, n_classes=4):
    """The first n_classes features replaced by a one-hot label (scaled to the input's peak)."""
    x = x.clone()
    x[:, :n_classes] = 0.0
    x[torch.arange(x.size(0)), y] = x.abs().max()
    return x


def train_ff_layers(torch, net, x, y, y_wrong, epochs=3, compile=_identity):
    x, y, y_wrong = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(y_wrong)
    optimizers = [torch.optim.Adam(layer.parameters(), lr=0.03) for layer in net.layers]

    def layer_step(i, h_pos, h_neg):
        layer, opt = net.layers[i], optimizers[i]
        opt.zero_grad()
        loss = net.layer_loss(layer, h_pos, h_neg)
        loss.backward()
        opt.step()
        return loss, layer(h_pos).detach(), layer(h_neg).detach()

    steps = [compile(lambda hp, hn, i=i: layer_step(i, hp, hn)) for i in range(len(net.layers))]
    losses = []
    for _ in range(epochs):
        for b in range(0, len(x), 6):
            h_pos = embed_label(torch, x[b : b + 6], y[b : b + 6])
            h_neg = embed_label(torch, x[b : b + 6], y_wrong[b : b + 6])
            for step in steps:  # each layer learns from the detached output of the one below
                loss, h_pos, h_neg = step(h_pos, h_neg)
                losses.append(loss.item())
    scores = torch.stack([net.goodness(embed_label(torch, x, torch.full_like(y, k))) for k in range(4)], 1)
    return {"losses": losses, "scores": scores, "predicted": scores.argmax(1)}


# -- g. a data pipeline: custom Dataset, transforms, samplers, collate_fn, chained schedulers, checkpoint/resume ----
class Compose:
    """A transforms.Compose of plain callables."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x):
        return (x - self.mean) / self.std


def make_dataset_class(torch):
    class Points(torch.utils.data.Dataset):
        """Feature rows and labels held as NumPy arrays, turned into tensors (and transformed) per item."""

        def __init__(self, features, labels, transform=None):
            self.features, self.labels, self.transform = features, labels, transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, idx):
            x = torch.from_numpy(self.features[idx])
            if self.transform is not None:
                x = self.transform(x)
            return {"x": x, "y": int(self.labels[idx]), "idx": idx}

    return Points


def make_sampler_classes(torch):
    class FixedOrderSampler(torch.utils.data.Sampler):
        """Indices in an order fixed by a NumPy seed (the same in both libraries), reshuffled each epoch."""

        def __init__(self, data_source, seed=0):
            self.n, self.seed, self.epoch = len(data_source), seed, 0

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __iter__(self):
            return iter(np.random.default_rng(self.seed + self.epoch).permutation(self.n).tolist())

        def __len__(self):
            return self.n

    class EvenOddBatchSampler(torch.utils.data.Sampler):
        """Batches of even indices, then batches of odd ones (a bucketing batch sampler)."""

        def __init__(self, n, batch_size):
            self.n, self.batch_size = n, batch_size

        def __iter__(self):
            for parity in (0, 1):
                idx = list(range(parity, self.n, 2))
                for i in range(0, len(idx), self.batch_size):
                    yield idx[i : i + self.batch_size]

        def __len__(self):
            half = (self.n + 1) // 2, self.n // 2
            return sum(math.ceil(h / self.batch_size) for h in half)

    return FixedOrderSampler, EvenOddBatchSampler


def collate_points(torch):
    def collate(batch):
        return (
            torch.stack([b["x"] for b in batch]),
            torch.tensor([b["y"] for b in batch]),
            [b["idx"] for b in batch],
        )

    return collate


def build_pipeline_model(torch, n_in=6, n_classes=3):
    nn = torch.nn
    return nn.Sequential(nn.Linear(n_in, 12), nn.ReLU(), nn.Dropout(0.0), nn.Linear(12, n_classes))


def make_training(torch, model, schedule):
    """The optimizer and the scheduler(s) the program uses (a list: all of them are stepped, in order)."""
    sched = torch.optim.lr_scheduler
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if schedule == "sequential":
        warm = sched.LinearLR(optimizer, start_factor=0.25, total_iters=2)
        cos = sched.CosineAnnealingLR(optimizer, T_max=4)
        return optimizer, [sched.SequentialLR(optimizer, [warm, cos], milestones=[2])]
    if schedule == "chained":
        return optimizer, [
            sched.ChainedScheduler([sched.ExponentialLR(optimizer, 0.9), sched.StepLR(optimizer, 2, gamma=0.5)])
        ]
    if schedule == "onecycle":
        return optimizer, [sched.OneCycleLR(optimizer, max_lr=0.2, total_steps=40)]
    return optimizer, [sched.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)]


def train_pipeline(
    torch,
    model,
    features,
    labels,
    schedule="sequential",
    epochs=4,
    start_epoch=0,
    resume=None,
    save_path=None,
    save_at=None,
    num_workers=0,
    compile=_identity,
):
    """Train on a transformed custom dataset through a DataLoader; with `resume`, load the checkpoint first; with
    `save_path`, save {model, optimizer, scheduler, epoch, scaler} after epoch `save_at`."""
    F = torch.nn.functional
    Points = make_dataset_class(torch)
    FixedOrderSampler, _ = make_sampler_classes(torch)
    mean, std = features.mean(0), features.std(0)
    transform = Compose([Normalize(torch.from_numpy(mean), torch.from_numpy(std)), lambda x: x.clamp(-3, 3)])
    dataset = Points(features, labels, transform)
    sampler = FixedOrderSampler(dataset, seed=3)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=torch.utils.data.BatchSampler(sampler, batch_size=5, drop_last=False),
        collate_fn=collate_points(torch),
        num_workers=num_workers,
        pin_memory=True,
    )
    optimizer, schedulers = make_training(torch, model, schedule)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8, growth_interval=3)
    if resume is not None:
        ckpt = torch.load(resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for s, state in zip(schedulers, ckpt["schedulers"]):
            s.load_state_dict(state)
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = ckpt["epoch"] + 1

    def forward_loss(x, y):
        with torch.autocast(device_type="cpu", enabled=False):
            return F.cross_entropy(model(x), y)

    loss_fn = compile(forward_loss)
    history, lrs, seen = [], [], []
    for epoch in range(start_epoch, epochs):
        sampler.set_epoch(epoch)
        model.train()
        total = 0.0
        for x, y, idx in loader:
            seen.append(idx)
            optimizer.zero_grad()
            loss = loss_fn(x, y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            scaler.step(optimizer)
            scaler.update()
            if schedule == "onecycle":
                schedulers[0].step()
            total += loss.item() * len(y)
            history.append(loss.item())
        epoch_loss = total / len(dataset)
        for s in schedulers:
            if schedule == "plateau":
                s.step(epoch_loss if epoch % 2 == 0 else epoch_loss + 1.0)  # every other epoch "got worse"
            elif schedule != "onecycle":
                s.step()
        lrs.append(optimizer.param_groups[0]["lr"])
        if save_path is not None and epoch == save_at:
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedulers": [s.state_dict() for s in schedulers],
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                },
                save_path,
            )
    return {"history": history, "lrs": lrs, "seen": seen, "scale": scaler.get_scale()}


def dataset_tools(torch, features, labels):
    """random_split, Subset, ConcatDataset, TensorDataset, WeightedRandomSampler, workers: what a program checks
    about its splits and loaders (sizes, disjointness, coverage), independent of the random generator."""
    data = torch.utils.data
    Points = make_dataset_class(torch)
    _, EvenOddBatchSampler = make_sampler_classes(torch)
    full = Points(features, labels)
    g = torch.Generator().manual_seed(0)
    train, val, test = data.random_split(full, [0.6, 0.2, 0.2], generator=g)
    parts = [sorted(s.indices) for s in (train, val, test)]
    tensors = data.TensorDataset(torch.from_numpy(features), torch.from_numpy(labels))
    sub = data.Subset(tensors, [0, 2, 4])
    both = data.ConcatDataset([sub, data.Subset(tensors, range(len(tensors) - 2, len(tensors)))])
    counts = np.bincount(labels)
    weights = torch.from_numpy(1.0 / counts[labels])
    wsampler = data.WeightedRandomSampler(weights, num_samples=60, replacement=True, generator=g)
    drawn = list(wsampler)
    loaders = {}
    for workers in (0, 2):
        loader = data.DataLoader(
            full,
            batch_sampler=EvenOddBatchSampler(len(full), 4),
            collate_fn=collate_points(torch),
            num_workers=workers,
            pin_memory=True,
        )
        loaders[workers] = [(x.numpy().copy(), y.numpy().copy(), idx) for x, y, idx in loader]
    return {
        "split_sizes": [len(train), len(val), len(test)],
        "split_parts": parts,
        "split_item": train[0]["idx"] == train.indices[0],
        "sub": [int(sub[i][1]) for i in range(len(sub))],
        "concat": (len(both), both[3][0].numpy().copy(), int(both[4][1])),
        "drawn": drawn,
        "loaders": loaders,
        "n_batches": len(loaders[0]),
    }
