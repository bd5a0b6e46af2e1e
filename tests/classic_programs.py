"""Small versions of ten classic PyTorch example programs, written as a PyTorch user writes them, with `torch` the
library passed in (graphnn, or PyTorch itself): tests/test_classic_programs.py runs each with both and compares.

Each program has a `build_*(torch)` giving its model(s), so that the test can load graphnn's initial weights into
PyTorch's, and a `train_*(torch, models, ..., compile=...)` running a few steps of its training loop on the data
given; `compile` wraps the program's training-step function (the identity, or graphnn.compile). What a program
returns (losses, metrics) is compared by the test.
"""

from __future__ import annotations

import math
import os
from collections import namedtuple


def _identity(fn):
    return fn


# -- 1. MNIST: a convolutional classifier, Adadelta and a step schedule ---------------------------------------------
def build_mnist_cnn(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(16 * 4 * 4, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = self.dropout2(x)
            return F.log_softmax(self.fc2(x), dim=1)

    return Net()


def train_mnist_cnn(torch, model, images, labels, save_dir, epochs=2, compile=_identity):
    F = torch.nn.functional
    from_data = torch.utils.data
    use_cuda = torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")
    model = model.to(device)
    train_loader = from_data.DataLoader(from_data.TensorDataset(images[:24], labels[:24]), batch_size=8)
    test_loader = from_data.DataLoader(from_data.TensorDataset(images[24:], labels[24:]), batch_size=16)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def train_step(data, target):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)
    losses, tests = [], []
    for _epoch in range(epochs):
        model.train()
        for data, target in train_loader:
            data, target = data.to(device), target.to(device)
            losses.append(step(data, target).item())
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for data, target in test_loader:
                output = model(data.to(device))
                test_loss += F.nll_loss(output, target.to(device), reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        tests.append((test_loss / len(test_loader.dataset), correct))
        scheduler.step()
    torch.save(model.state_dict(), os.path.join(save_dir, "mnist_cnn.pt"))
    return {"losses": losses, "test_losses": [t[0] for t in tests], "correct": [t[1] for t in tests]}


# -- 2. MNIST, row by row: an LSTM classifier ------------------------------------------------------------------------
def build_mnist_rnn(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(input_size=12, hidden_size=16, batch_first=True)
            self.batchnorm = nn.BatchNorm1d(16)
            self.dropout1 = nn.Dropout2d(0.25)
            self.dropout2 = nn.Dropout2d(0.5)
            self.fc1 = nn.Linear(16, 16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, input):
            input = input.reshape(-1, 12, 12)  # rows are the time steps
            output, _hidden = self.rnn(input)
            output = output[:, -1, :]
            output = self.batchnorm(output)
            output = self.dropout1(output)
            output = F.relu(self.fc1(output))
            output = self.dropout2(output)
            return F.log_softmax(self.fc2(output), dim=1)

    return Net()


def train_mnist_rnn(torch, model, images, labels, compile=_identity):
    F = torch.nn.functional
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def train_step(data, target):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)
    losses = []
    for _epoch in range(2):
        model.train()
        for data, target in loader:
            losses.append(step(data, target).item())
        scheduler.step()
    model.eval()
    with torch.no_grad():
        pred = model(images).argmax(dim=1)
    return {"losses": losses, "correct": int(pred.eq(labels).sum().item())}


# -- 3. DCGAN: a generator of transposed convolutions against a convolutional discriminator ------------------------
NZ, NGF, NDF, NC = 8, 4, 4, 3


def build_dcgan(torch):
    nn = torch.nn

    def weights_init(m):
        """The custom initialization applied to every layer of both networks."""
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            m.weight.data.normal_(0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            m.weight.data.normal_(1.0, 0.02)
            nn.init.constant_(m.bias.data, 0)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False),  # 4 x 4
                nn.BatchNorm2d(NGF * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),  # 8 x 8
                nn.BatchNorm2d(NGF * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 2, NC, 4, 2, 1, bias=False),  # 16 x 16
                nn.Tanh(),
            )

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),  # 8 x 8
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),  # 4 x 4
                nn.BatchNorm2d(NDF * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False),
                nn.Sigmoid(),
            )

        def forward(self, input):
            return self.main(input).view(-1, 1).squeeze(1)

    netG, netD = Generator(), Discriminator()
    netG.apply(weights_init)
    netD.apply(weights_init)
    return netG, netD


def train_dcgan(torch, nets, images, save_dir, compile=_identity):
    nn = torch.nn
    netG, netD = nets
    device = torch.device("cpu")
    criterion = nn.BCELoss()
    fixed_noise = torch.randn(4, NZ, 1, 1, device=device)
    real_label, fake_label = 1.0, 0.0
    optimizerD = torch.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=4)

    def train_step(real):
        # (1) the discriminator: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        b_size = real.size(0)
        label = torch.full((b_size,), real_label, dtype=real.dtype, device=device)
        output = netD(real)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean()
        noise = torch.randn(b_size, NZ, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) the generator: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)  # fake labels are real for the generator's cost
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean()
        optimizerG.step()
        return errD, errG, D_x, D_G_z1, D_G_z2

    step = compile(train_step)
    history = []
    for _epoch in range(2):
        for (real_cpu,) in loader:
            history.append([t.item() for t in step(real_cpu.to(device))])
        torch.save(netG.state_dict(), os.path.join(save_dir, "netG.pth"))
        torch.save(netD.state_dict(), os.path.join(save_dir, "netD.pth"))
    with torch.no_grad():
        fake = netG(fixed_noise).detach().cpu()
    return {"history": history, "fake": fake}


# -- 4. Fast neural style: a transformer network against a fixed feature network's Gram matrices -------------------
def build_style(torch):
    nn = torch.nn

    class ConvLayer(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride):
            super().__init__()
            self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
            self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

        def forward(self, x):
            return self.conv2d(self.reflection_pad(x))

    class ResidualBlock(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
            self.in1 = nn.InstanceNorm2d(channels, affine=True)
            self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
            self.in2 = nn.InstanceNorm2d(channels, affine=True)
            self.relu = nn.ReLU()

        def forward(self, x):
            residual = x
            out = self.relu(self.in1(self.conv1(x)))
            out = self.in2(self.conv2(out))
            return out + residual

    class UpsampleConvLayer(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
            super().__init__()
            self.upsample = upsample
            self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
            self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

        def forward(self, x):
            if self.upsample:
                x = torch.nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
            return self.conv2d(self.reflection_pad(x))

    class TransformerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = ConvLayer(3, 4, kernel_size=5, stride=1)
            self.in1 = nn.InstanceNorm2d(4, affine=True)
            self.conv2 = ConvLayer(4, 8, kernel_size=3, stride=2)
            self.in2 = nn.InstanceNorm2d(8, affine=True)
            self.res1 = ResidualBlock(8)
            self.res2 = ResidualBlock(8)
            self.deconv1 = UpsampleConvLayer(8, 4, kernel_size=3, stride=1, upsample=2)
            self.in3 = nn.InstanceNorm2d(4, affine=True)
            self.deconv2 = UpsampleConvLayer(4, 3, kernel_size=5, stride=1)
            self.relu = nn.ReLU()

        def forward(self, X):
            y = self.relu(self.in1(self.conv1(X)))
            y = self.relu(self.in2(self.conv2(y)))
            y = self.res2(self.res1(y))
            y = self.relu(self.in3(self.deconv1(y)))
            return self.deconv2(y)

    class Features(nn.Module):
        """A fixed feature network (the program uses VGG-16's first layers) with two outputs."""

        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()]
            layers += [nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()]
            self.slice1 = nn.Sequential()
            self.slice2 = nn.Sequential()
            for x in range(4):
                self.slice1.add_module(str(x), layers[x])
            for x in range(4, 7):
                self.slice2.add_module(str(x), layers[x])
            for param in self.parameters():
                param.requires_grad = False

        def forward(self, X):
            h = self.slice1(X)
            h_relu1_2 = h
            h = self.slice2(h)
            h_relu2_2 = h
            return namedtuple("FeatureOutputs", ["relu1_2", "relu2_2"])(h_relu1_2, h_relu2_2)

    return TransformerNet(), Features()


def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    return features.bmm(features_t) / (ch * h * w)


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def train_style(torch, nets, images, style_image, save_dir, compile=_identity):
    transformer, features = nets
    mse_loss = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(transformer.parameters(), 1e-3)
    content_weight, style_weight = 1e5, 1e10
    style = style_image.repeat(4, 1, 1, 1)
    features_style = features(normalize_batch(style))
    gram_style = [gram_matrix(y) for y in features_style]

    def train_step(x):
        n_batch = len(x)
        optimizer.zero_grad()
        y = transformer(x)
        y = normalize_batch(y)
        x = normalize_batch(x)
        features_y = features(y)
        features_x = features(x)
        content_loss = content_weight * mse_loss(features_y.relu2_2, features_x.relu2_2)
        style_loss = 0.0
        for ft_y, gm_s in zip(features_y, gram_style):
            gm_y = gram_matrix(ft_y)
            style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
        style_loss *= style_weight
        total_loss = content_loss + style_loss
        total_loss.backward()
        optimizer.step()
        return content_loss, style_loss

    step = compile(train_step)
    history = []
    transformer.train()
    for batch in images.split(4):
        content, style_l = step(batch.clone())
        history.append((content.item(), style_l.item()))
    transformer.eval()
    torch.save(transformer.state_dict(), os.path.join(save_dir, "style.model"))
    with torch.no_grad():
        out = transformer(images[:2]).clamp(0, 255)
    return {"history": history, "stylized": out}


# -- 5. Word language model: an RNN or a Transformer over batchified token streams ----------------------------------
def build_word_lm(torch, model_type, ntoken=29, ninp=12, nhid=16, nlayers=2, dropout=0.0):
    nn, F = torch.nn, torch.nn.functional

    class RNNModel(nn.Module):
        """Encoder, a recurrent module, and a decoder."""

        def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
            super().__init__()
            self.ntoken = ntoken
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            if rnn_type in ["LSTM", "GRU"]:
                self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
            else:
                nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
                self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            if tie_weights:
                self.decoder.weight = self.encoder.weight
            self.init_weights()
            self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output)
            decoded = decoded.view(-1, self.ntoken)
            return F.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            if self.rnn_type == "LSTM":
                return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))
            return weight.new_zeros(self.nlayers, bsz, self.nhid)

    class PositionalEncoding(nn.Module):
        """Sine and cosine positional encodings added to the embeddings, kept as a buffer."""

        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout)
            pe = torch.zeros(max_len, d_model)
            position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            pe = pe.unsqueeze(0).transpose(0, 1)
            self.register_buffer("pe", pe)

        def forward(self, x):
            x = x + self.pe[: x.size(0), :]
            return self.dropout(x)

    class TransformerModel(nn.Transformer):
        """An nn.Transformer used as an encoder only, with a causal mask."""

        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super().__init__(
                d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers, dropout=dropout
            )
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn.Linear(ninp, ntoken)
            self.init_weights()

        def _generate_square_subsequent_mask(self, sz):
            return torch.log(torch.tril(torch.ones(sz, sz)))

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            if has_mask:
                device = src.device
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    mask = self._generate_square_subsequent_mask(len(src)).to(device)
                    self.src_mask = mask
            else:
                self.src_mask = None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=self.src_mask)
            output = self.decoder(output)
            return F.log_softmax(output, dim=-1)

    if model_type == "Transformer":
        return TransformerModel(ntoken, ninp, 2, nhid, nlayers, dropout)
    return RNNModel(model_type, ntoken, ninp, nhid, nlayers, dropout)


def train_word_lm(torch, model, tokens, model_type, lr=20.0, clip=0.25, bptt=5, batch_size=4, compile=_identity):
    device = torch.device("cpu")
    ntokens = model.ntoken if model_type != "Transformer" else model.decoder.out_features
    criterion = torch.nn.CrossEntropyLoss()

    def batchify(data, bsz):
        nbatch = data.size(0) // bsz
        data = data.narrow(0, 0, nbatch * bsz)
        data = data.view(bsz, -1).t().contiguous()
        return data.to(device)

    def repackage_hidden(h):
        """Wraps hidden states in new Tensors, to detach them from their history."""
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(repackage_hidden(v) for v in h)

    def get_batch(source, i):
        seq_len = min(bptt, len(source) - 1 - i)
        data = source[i : i + seq_len]
        target = source[i + 1 : i + 1 + seq_len].view(-1)
        return data, target

    train_data = batchify(tokens[:90], batch_size)
    val_data = batchify(tokens[90:], 2)

    def train_step(data, targets, hidden, lr):
        model.zero_grad()
        if model_type == "Transformer":
            output = model(data)
            output = output.view(-1, ntokens)
        else:
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        return loss, hidden

    def evaluate(data_source):
        model.eval()
        total_loss = 0.0
        if model_type != "Transformer":
            hidden = model.init_hidden(2)
        with torch.no_grad():
            for i in range(0, data_source.size(0) - 1, bptt):
                data, targets = get_batch(data_source, i)
                if model_type == "Transformer":
                    output = model(data)
                else:
                    output, hidden = model(data, hidden)
                    hidden = repackage_hidden(hidden)
                total_loss += len(data) * criterion(output.view(-1, ntokens), targets).item()
        return total_loss / (len(data_source) - 1)

    step = compile(train_step)
    losses, val_losses = [], []
    best_val_loss = None
    for _epoch in range(2):
        model.train()
        hidden = model.init_hidden(batch_size) if model_type != "Transformer" else None
        for i in range(0, train_data.size(0) - 1, bptt):
            data, targets = get_batch(train_data, i)
            loss, hidden = step(data, targets, hidden, lr)
            losses.append(loss.item())
        val_loss = evaluate(val_data)
        val_losses.append(val_loss)
        if not best_val_loss or val_loss < best_val_loss:
            best_val_loss = val_loss
        else:
            lr /= 4.0
    return {"losses": losses, "val_losses": val_losses}


# -- 6. Forward-forward: layers trained one at a time on their own goodness --------------------------------------
def build_forward_forward(torch):
    nn = torch.nn

    class Layer(nn.Linear):
        def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
            super().__init__(in_features, out_features, bias, device, dtype)
            self.relu = torch.nn.ReLU()
            self.opt = torch.optim.Adam(self.parameters(), lr=0.03)
            self.threshold = 2.0
            self.num_epochs = 5

        def forward(self, x):
            x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
            return self.relu(torch.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

        def train_step(self, x_pos, x_neg):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = torch.log(1 + torch.exp(torch.cat([-g_pos + self.threshold, g_neg - self.threshold]))).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            return loss

        def train(self, x_pos, x_neg, step=None):
            losses = []
            step = step or self.train_step
            for _ in range(self.num_epochs):
                losses.append(step(x_pos, x_neg).item())
            return self.forward(x_pos).detach(), self.forward(x_neg).detach(), losses

    class Net(torch.nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.layers = [Layer(dims[d], dims[d + 1]) for d in range(len(dims) - 1)]

        def predict(self, x):
            goodness_per_label = []
            for label in range(10):
                h = overlay_y_on_x(torch, x, label)
                goodness = []
                for layer in self.layers:
                    h = layer(h)
                    goodness += [h.pow(2).mean(1)]
                goodness_per_label += [sum(goodness).unsqueeze(1)]
            goodness_per_label = torch.cat(goodness_per_label, 1)
            return goodness_per_label.argmax(1)

        def train(self, x_pos, x_neg, compile=_identity):
            h_pos, h_neg = x_pos, x_neg
            losses = []
            for layer in self.layers:
                h_pos, h_neg, layer_losses = layer.train(h_pos, h_neg, compile(layer.train_step))
                losses += layer_losses
            return losses

    net = Net([20, 16, 16])
    for i, layer in enumerate(net.layers):
        net.add_module(f"layer{i}", layer)
    return net


def overlay_y_on_x(torch, x, y):
    """The first 10 pixels replaced by a one-hot encoding of the label y."""
    x_ = x.clone()
    x_[:, :10] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


def train_forward_forward(torch, net, x, y, compile=_identity):
    x_pos = overlay_y_on_x(torch, x, y)
    rnd = torch.randperm(x.size(0))
    x_neg = overlay_y_on_x(torch, x, y[rnd])
    losses = net.train(x_pos, x_neg, compile)
    error = 1.0 - net.predict(x).eq(y).float().mean().item()
    return {"losses": losses, "error": error}


# -- 7. Time-sequence prediction: an LSTMCell loop in double precision, trained with L-BFGS ------------------------
def build_sequence(torch):
    nn = torch.nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, 12)
            self.lstm2 = nn.LSTMCell(12, 12)
            self.linear = nn.Linear(12, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = torch.zeros(input.size(0), 12, dtype=torch.double)
            c_t = torch.zeros(input.size(0), 12, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), 12, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), 12, dtype=torch.double)
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for _ in range(future):  # predict the future from the model's own outputs
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return torch.cat(outputs, dim=1)

    return Sequence().double()


def train_sequence(torch, seq, data, steps=2, compile=_identity):
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.LBFGS(seq.parameters(), lr=0.8, max_iter=4)

    def loss_and_grad(input, target):
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        loss.backward()
        return loss

    compiled = compile(loss_and_grad)
    losses, test_losses = [], []
    for _i in range(steps):

        def closure():
            loss = compiled(input, target)
            losses.append(loss.item())
            return loss

        optimizer.step(closure)
        with torch.no_grad():  # predict, and look at the future
            future = 3
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            test_losses.append(loss.item())
            y = pred.detach().numpy()
    return {"losses": losses, "test_losses": test_losses, "prediction": y}


# -- 8. Variational auto-encoder ------------------------------------------------------------------------------------
def build_vae(torch):
    nn, F = torch.nn, torch.nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(36, 16)
            self.fc21 = nn.Linear(16, 4)
            self.fc22 = nn.Linear(16, 4)
            self.fc3 = nn.Linear(4, 16)
            self.fc4 = nn.Linear(16, 36)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 36))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    return VAE()


def vae_loss_function(torch, recon_x, x, mu, logvar):
    """Reconstruction (binary cross-entropy, summed) plus the KL divergence from the unit normal."""
    BCE = torch.nn.functional.binary_cross_entropy(recon_x, x.view(-1, 36), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def train_vae(torch, model, images, compile=_identity):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step(data):
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = vae_loss_function(torch, recon_batch, data, mu, logvar)
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)
    losses = []
    for _epoch in range(2):
        model.train()
        for (data,) in loader:
            losses.append(step(data).item() / len(data))
    model.eval()
    with torch.no_grad():
        sample = torch.randn(4, 4)
        sample = model.decode(sample).cpu()
        recon, mu, logvar = model(images[:8])
        test_loss = vae_loss_function(torch, recon, images[:8], mu, logvar).item()
    return {"losses": losses, "test_loss": test_loss, "sample": sample.view(4, 1, 6, 6)}


# -- 9. Polynomial regression: a linear model on x, x^2, x^3, x^4 with a hand-written gradient step -----------------
POLY_DEGREE = 4


def make_features(torch, x):
    """A matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return torch.cat([x**i for i in range(1, POLY_DEGREE + 1)], 1)


def build_poly(torch):
    return torch.nn.Linear(POLY_DEGREE, 1)


def train_poly(torch, fc, steps=6, compile=_identity):
    F = torch.nn.functional
    w_target = torch.randn(POLY_DEGREE, 1) * 5
    b_target = torch.randn(1) * 5

    def f(x):
        """The function to approximate."""
        return x.mm(w_target) + b_target.item()

    def get_batch(batch_size=32):
        random = torch.randn(batch_size)
        x = make_features(torch, random)
        return x, f(x)

    def poly_desc(W, b):
        result = "y = "
        for i, w in enumerate(W):
            result += "{:+.2f} x^{} ".format(w, i + 1)
        return result + "{:+.2f}".format(b[0])

    def train_step(batch_x, batch_y):
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        output.backward()
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        return output

    step = compile(train_step)
    losses = []
    for _ in range(steps):
        losses.append(step(*get_batch()).item())
    # the same step written with an in-place update under no_grad
    batch_x, batch_y = get_batch()
    fc.zero_grad()
    loss = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss.backward()
    with torch.no_grad():
        for p in fc.parameters():
            p -= 0.1 * p.grad
    losses.append(loss.item())
    learned = poly_desc(fc.weight.view(-1), fc.bias)
    return {"losses": losses, "weight": fc.weight.view(-1), "bias": fc.bias, "learned": learned}


# -- 10. Super-resolution: convolutions and a pixel shuffle, orthogonal initialization ---------------------------
def build_super_resolution(torch, upscale_factor=2):
    nn, init = torch.nn, torch.nn.init

    class Net(nn.Module):
        def __init__(self, upscale_factor):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv1 = nn.Conv2d(1, 8, (5, 5), (1, 1), (2, 2))
            self.conv2 = nn.Conv2d(8, 8, (3, 3), (1, 1), (1, 1))
            self.conv3 = nn.Conv2d(8, 4, (3, 3), (1, 1), (1, 1))
            self.conv4 = nn.Conv2d(4, upscale_factor**2, (3, 3), (1, 1), (1, 1))
            self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
            self._initialize_weights()

        def forward(self, x):
            x = self.relu(self.conv1(x))
            x = self.relu(self.conv2(x))
            x = self.relu(self.conv3(x))
            return self.pixel_shuffle(self.conv4(x))

        def _initialize_weights(self):
            init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv4.weight)

    return Net(upscale_factor)


def train_super_resolution(torch, model, low, high, compile=_identity):
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(low, high), batch_size=4)

    def train_step(input, target):
        optimizer.zero_grad()
        loss = criterion(model(input), target)
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)
    losses, psnrs = [], []
    for _epoch in range(2):
        for input, target in loader:
            losses.append(step(input, target).item())
        with torch.no_grad():
            mse = criterion(model(low), high)
            psnrs.append(10 * math.log10(1 / mse.item()))
    return {"losses": losses, "psnr": psnrs}
