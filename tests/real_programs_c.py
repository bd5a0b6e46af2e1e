"""Small versions of five more well-known PyTorch programs, written as their authors write them, with `torch` the
library passed in (graphnn, or PyTorch itself): tests/test_real_programs_c.py runs each with both and compares.

As in classic_programs.py, each program has a `build_*(torch)` giving its model(s) (so that the test can load
graphnn's initial weights into PyTorch's) and a `train_*(torch, model(s), ..., compile=...)` running a few steps
of its training loop on tiny synthetic data; `compile` wraps the program's training-step function (the identity,
or graphnn.compile).
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np


def _identity(fn):
    return fn


# -- a. graph convolutional network: a sparse normalized adjacency, Adam with weight decay, a boolean train mask --
def random_graph(n_nodes: int = 12, n_feats: int = 8, n_classes: int = 3, seed: int = 0):
    """A small citation-like graph: node features, labels, an undirected edge list (each edge once) and masks."""
    r = np.random.default_rng(seed)
    labels = r.integers(0, n_classes, n_nodes)
    feats = ((r.random((n_nodes, n_feats)) < 0.4) + np.eye(n_classes, n_feats)[labels] * 0.5).astype(np.float32)
    pairs = {(int(a), int(b)) for a, b in r.integers(0, n_nodes, (3 * n_nodes, 2)) if a != b}
    pairs |= {(i, (i + 1) % n_nodes) for i in range(n_nodes)}
    edges = np.array(sorted({(min(a, b), max(a, b)) for a, b in pairs}), np.int64)
    idx = r.permutation(n_nodes)
    train = np.zeros(n_nodes, bool)
    train[idx[: n_nodes // 2]] = True
    return feats, labels, edges, train


def build_gcn(torch, n_feats=8, n_hidden=16, n_classes=3):
    nn, F = torch.nn, torch.nn.functional

    class GraphConv(nn.Module):
        """One graph convolution: A_hat @ (X @ W) + b, with A_hat a sparse normalized adjacency."""

        def __init__(self, input_dim, output_dim, use_bias=False):
            super().__init__()
            self.kernel = nn.Parameter(torch.Tensor(input_dim, output_dim))
            nn.init.xavier_normal_(self.kernel)
            self.bias = None
            if use_bias:
                self.bias = nn.Parameter(torch.Tensor(output_dim))
                nn.init.zeros_(self.bias)

        def forward(self, input_tensor, adj_mat):
            support = torch.mm(input_tensor, self.kernel)
            output = torch.spmm(adj_mat, support)
            if self.bias is not None:
                output = output + self.bias
            return output

    class GCN(nn.Module):
        def __init__(self, input_dim, hidden_dim, output_dim, use_bias=True, dropout_p=0.1):
            super().__init__()
            self.gc1 = GraphConv(input_dim, hidden_dim, use_bias=use_bias)
            self.gc2 = GraphConv(hidden_dim, output_dim, use_bias=use_bias)
            self.dropout = nn.Dropout(dropout_p)

        def forward(self, input_tensor, adj_mat):
            x = self.gc1(input_tensor, adj_mat)
            x = F.relu(x)
            x = self.dropout(x)
            x = self.gc2(x, adj_mat)
            return torch.log_softmax(x, dim=1)

    return GCN(n_feats, n_hidden, n_classes)


def normalized_adjacency(torch, edges, n_nodes: int):
    """D^-1/2 (A + I) D^-1/2 as a sparse COO tensor, built with sparse operations as GCN programs do."""
    idx = torch.from_numpy(edges).t()  # (2, E), each undirected edge once
    both = torch.cat([idx, idx.flip(0)], dim=1)  # and in the other direction
    values = torch.ones(both.size(1))
    adj = torch.sparse_coo_tensor(both, values, (n_nodes, n_nodes))
    adj = (adj + torch.eye(n_nodes).to_sparse()).coalesce()
    assert adj.is_sparse and adj.layout == torch.sparse_coo
    degree = torch.sparse.sum(adj, dim=1).to_dense()
    assert torch.equal(degree, adj.to_dense().sum(1))
    d_inv_sqrt = degree.pow(-0.5)
    d_inv_sqrt[torch.isinf(d_inv_sqrt)] = 0.0
    row, col = adj.indices()
    norm_values = d_inv_sqrt[row] * adj.values() * d_inv_sqrt[col]
    return torch.sparse_coo_tensor(adj._indices(), norm_values, adj.size()).coalesce()


def train_gcn(torch, model, feats, labels, edges, train_mask, epochs=4, compile=_identity):
    F = torch.nn.functional
    n = feats.shape[0]
    features = torch.FloatTensor(feats)
    features = features / features.sum(1, keepdim=True)  # row-normalized bag of words
    labels = torch.LongTensor(labels)
    adj = normalized_adjacency(torch, edges, n)
    info = {"nnz": adj._nnz(), "shape": tuple(adj.shape), "dense": adj.to_dense().numpy().copy()}
    train_mask = torch.from_numpy(train_mask)
    test_mask = ~train_mask
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    criterion = torch.nn.NLLLoss()

    def train_iter(features, adj):
        model.train()
        optimizer.zero_grad()
        output = model(features, adj)
        loss = criterion(output[train_mask], labels[train_mask])
        loss.backward()
        optimizer.step()
        return loss, output

    step = compile(train_iter)

    def test(mask):
        model.eval()
        with torch.no_grad():
            output = model(features, adj)
            loss = F.nll_loss(output[mask], labels[mask])
            preds = output[mask].argmax(dim=1)
            correct = preds.eq(labels[mask]).sum().item()
            return loss.item(), correct / int(mask.sum())

    losses, accs = [], []
    for _epoch in range(epochs):
        loss, _out = step(features, adj)
        losses.append(loss.item())
        accs.append(test(test_mask))
    # a gradient w.r.t. the dense operand of a sparse product, taken outside the training step
    x = features.clone().requires_grad_(True)
    torch.sparse.mm(adj, x).pow(2).sum().backward()
    info["x_grad"] = x.grad.numpy().copy()
    return {"losses": losses, "tests": accs, **info}


# -- b. graph attention network: multi-head attention over a dense adjacency --------------------------------------
def build_gat(torch, n_feats=8, n_hidden=8, n_heads=2, n_classes=3, variant="examples"):
    nn, F = torch.nn, torch.nn.functional

    class GraphAttentionLayer(nn.Module):
        """pytorch/examples' layer: the heads side by side, source and target scores added by broadcasting."""

        def __init__(self, in_features, out_features, n_heads, concat=False, dropout=0.4, leaky_relu_slope=0.2):
            super().__init__()
            self.n_heads = n_heads
            self.concat = concat
            self.dropout = dropout
            if concat:
                self.out_features = out_features
                assert out_features % n_heads == 0
                self.n_hidden = out_features // n_heads
            else:
                self.n_hidden = out_features
            self.W = nn.Parameter(torch.empty(size=(in_features, self.n_hidden * n_heads)))
            self.a = nn.Parameter(torch.empty(size=(n_heads, 2 * self.n_hidden, 1)))
            self.leakyrelu = nn.LeakyReLU(leaky_relu_slope)
            self.softmax = nn.Softmax(dim=1)
            self.reset_parameters()

        def reset_parameters(self):
            nn.init.xavier_normal_(self.W)
            nn.init.xavier_normal_(self.a)

        def _get_attention_scores(self, h_transformed):
            source_scores = torch.matmul(h_transformed, self.a[:, : self.n_hidden, :])
            target_scores = torch.matmul(h_transformed, self.a[:, self.n_hidden :, :])
            e = source_scores + target_scores.mT  # (n_heads, n_nodes, n_nodes)
            return self.leakyrelu(e)

        def forward(self, h, adj_mat):
            n_nodes = h.shape[0]
            h_transformed = torch.mm(h, self.W)
            h_transformed = F.dropout(h_transformed, self.dropout, training=self.training)
            h_transformed = h_transformed.view(n_nodes, self.n_heads, self.n_hidden).permute(1, 0, 2)
            e = self._get_attention_scores(h_transformed)
            connectivity_mask = -9e16 * torch.ones_like(e)
            e = torch.where(adj_mat > 0, e, connectivity_mask)
            attention = F.softmax(e, dim=-1)
            attention = F.dropout(attention, self.dropout, training=self.training)
            h_prime = torch.matmul(attention, h_transformed)
            if self.concat:
                h_prime = h_prime.permute(1, 0, 2).contiguous().view(n_nodes, self.out_features)
            else:
                h_prime = h_prime.mean(dim=0)
            return h_prime

    class PairLayer(nn.Module):
        """The original pyGAT layer (one head): every (i, j) pair's features concatenated via repeat_interleave and
        repeat, masked_fill(adj == 0, -inf)."""

        def __init__(self, in_features, out_features, dropout=0.4, alpha=0.2, concat=True):
            super().__init__()
            self.dropout, self.alpha, self.concat = dropout, alpha, concat
            self.out_features = out_features
            self.W = nn.Parameter(torch.empty(size=(in_features, out_features)))
            nn.init.xavier_uniform_(self.W.data, gain=1.414)
            self.a = nn.Parameter(torch.empty(size=(2 * out_features, 1)))
            nn.init.xavier_uniform_(self.a.data, gain=1.414)
            self.leakyrelu = nn.LeakyReLU(self.alpha)

        def _prepare_attentional_mechanism_input(self, Wh):
            N = Wh.size()[0]
            Wh_repeated_in_chunks = Wh.repeat_interleave(N, dim=0)
            Wh_repeated_alternating = Wh.repeat(N, 1)
            all_combinations_matrix = torch.cat([Wh_repeated_in_chunks, Wh_repeated_alternating], dim=1)
            return all_combinations_matrix.view(N, N, 2 * self.out_features)

        def forward(self, h, adj):
            Wh = torch.mm(h, self.W)
            a_input = self._prepare_attentional_mechanism_input(Wh)
            e = self.leakyrelu(torch.matmul(a_input, self.a).squeeze(2))
            attention = e.masked_fill(adj == 0, float("-inf"))
            attention = F.softmax(attention, dim=1)
            attention = F.dropout(attention, self.dropout, training=self.training)
            h_prime = torch.matmul(attention, Wh)
            return F.elu(h_prime) if self.concat else h_prime

    class GAT(nn.Module):
        def __init__(self, in_features, n_hidden, n_heads, num_classes, concat=False, dropout=0.4, slope=0.2):
            super().__init__()
            if variant == "examples":
                self.gat1 = GraphAttentionLayer(in_features, n_hidden, n_heads, concat, dropout, slope)
                self.gat2 = GraphAttentionLayer(n_hidden, num_classes, 1, False, dropout, slope)
            else:
                self.gat1 = PairLayer(in_features, n_hidden, dropout, slope, concat=True)
                self.gat2 = PairLayer(n_hidden, num_classes, dropout, slope, concat=False)

        def forward(self, input_tensor, adj_mat):
            x = self.gat1(input_tensor, adj_mat)
            x = F.elu(x)
            x = self.gat2(x, adj_mat)
            return F.log_softmax(x, dim=1)

    return GAT(n_feats, n_hidden, n_heads, n_classes, concat=True)


def train_gat(torch, model, feats, labels, edges, train_mask, epochs=3, compile=_identity):
    n = feats.shape[0]
    features = torch.tensor(feats)
    labels = torch.tensor(labels)
    adj = torch.zeros(n, n)
    src, dst = torch.from_numpy(edges[:, 0]), torch.from_numpy(edges[:, 1])
    adj[src, dst] = 1.0
    adj[dst, src] = 1.0
    adj = adj + torch.eye(n)
    idx_train = torch.from_numpy(np.flatnonzero(train_mask))
    idx_test = torch.from_numpy(np.flatnonzero(~train_mask))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    criterion = torch.nn.NLLLoss()

    def train_iter(features, adj_mat):
        model.train()
        optimizer.zero_grad()
        output = model(features, adj_mat)
        loss = criterion(output[idx_train], labels[idx_train])
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_iter)
    losses, tests = [], []
    for _epoch in range(epochs):
        losses.append(step(features, adj).item())
        model.eval()
        with torch.no_grad():
            output = model(features, adj)
            test_loss = criterion(output[idx_test], labels[idx_test])
            _, preds = output.max(1)
            correct = preds[idx_test].eq(labels[idx_test]).double().sum()
            tests.append((test_loss.item(), (correct / len(idx_test)).item()))
    return {"losses": losses, "tests": tests}


# -- c. MNIST hogwild: processes training one shared model -------------------------------------------------------
# Started with `spawn`, a child process unpickles the model, so its class must be found by name in this module, as
# a program's module-level `class Net` is: the classes of both libraries are made on first use (module __getattr__).
_CLASSES: dict = {}


def _library(name: str):
    import importlib

    return importlib.import_module(name)


def _module_class(torch, base: str, make):
    name = f"{base}_{torch.__name__}"
    if name not in _CLASSES:
        cls = make(torch)
        cls.__name__ = cls.__qualname__ = name
        cls.__module__ = __name__
        _CLASSES[name] = cls
    return _CLASSES[name]


def __getattr__(name: str):
    for base, make in (("HogwildNet", _hogwild_net), ("SmallCNN", _small_cnn)):
        if name.startswith(base + "_"):
            return _module_class(_library(name[len(base) + 1 :]), base, make)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _hogwild_net(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, kernel_size=3)
            self.conv2 = nn.Conv2d(4, 8, kernel_size=3)
            self.conv2_drop = nn.Dropout2d(0.0)
            self.fc1 = nn.Linear(8 * 2 * 2, 16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
            x = x.view(-1, 8 * 2 * 2)
            x = F.relu(self.fc1(x))
            x = F.dropout(x, p=0.0, training=self.training)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    return Net


def build_hogwild(torch):
    return _module_class(torch, "HogwildNet", _hogwild_net)()


def hogwild_train(rank, lib, model, dataset, epochs, seed, lr, log_q):
    """A worker process: its own optimizer over the shared parameters (mnist_hogwild/train.py); `lib`: the name of
    the library (a module cannot be sent to a spawned process)."""
    torch = _library(lib)
    F = torch.nn.functional
    torch.manual_seed(seed + rank)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    model.train()
    for _epoch in range(epochs):
        for data, target in train_loader:
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            if log_q is not None:
                log_q.put((rank, loss.item()))


def hogwild_test(torch, model, dataset):
    F = torch.nn.functional
    model.eval()
    test_loss, correct = 0.0, 0
    loader = torch.utils.data.DataLoader(dataset, batch_size=16)
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.max(1)[1]
            correct += pred.eq(target).sum().item()
    return test_loss / len(loader.dataset), correct


def train_hogwild(
    torch, model, images, labels, num_processes=2, epochs=1, start_method="fork", lr=0.05, join_timeout=120
):
    """mnist_hogwild/main.py: share the model's memory, start the workers, join them, test in the parent."""
    mp = torch.multiprocessing
    try:
        mp.set_start_method(start_method, force=True)
    except RuntimeError:
        pass
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images[:16]), torch.from_numpy(labels[:16]))
    test_set = torch.utils.data.TensorDataset(torch.from_numpy(images[16:]), torch.from_numpy(labels[16:]))
    model.share_memory()
    assert all(p.is_shared() for p in model.parameters())
    log_q = mp.get_context(start_method).SimpleQueue() if num_processes > 0 else None
    processes = []
    for rank in range(num_processes):
        p = mp.Process(target=hogwild_train, args=(rank, torch.__name__, model, dataset, epochs, 1, lr, log_q))
        p.start()
        processes.append(p)
    for p in processes:
        p.join(timeout=join_timeout)  # (the test's bound: a stuck worker fails the test instead of hanging it)
        if p.is_alive():
            p.terminate()
    exitcodes = [p.exitcode for p in processes]
    logs = []
    while log_q is not None and not log_q.empty():
        logs.append(log_q.get())
    return {"exitcodes": exitcodes, "logs": logs, "test": hogwild_test(torch, model, test_set)}


# -- d. language translation with nn.Transformer -------------------------------------------------------------------
PAD_IDX, BOS_IDX, EOS_IDX = 1, 2, 3


def build_translation(torch, src_vocab=11, tgt_vocab=10, emb_size=16, nhead=2, ffn=24, layers=1):
    nn = torch.nn

    class PositionalEncoding(nn.Module):
        def __init__(self, emb_size, dropout, maxlen=50):
            super().__init__()
            den = torch.exp(-torch.arange(0, emb_size, 2) * math.log(10000) / emb_size)
            pos = torch.arange(0, maxlen).reshape(maxlen, 1)
            pos_embedding = torch.zeros((maxlen, emb_size))
            pos_embedding[:, 0::2] = torch.sin(pos * den)
            pos_embedding[:, 1::2] = torch.cos(pos * den)
            pos_embedding = pos_embedding.unsqueeze(-2)
            self.dropout = nn.Dropout(dropout)
            self.register_buffer("pos_embedding", pos_embedding)

        def forward(self, token_embedding):
            return self.dropout(token_embedding + self.pos_embedding[: token_embedding.size(0), :])

    class TokenEmbedding(nn.Module):
        def __init__(self, vocab_size, emb_size):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, emb_size)
            self.emb_size = emb_size

        def forward(self, tokens):
            return self.embedding(tokens.long()) * math.sqrt(self.emb_size)

    class Seq2SeqTransformer(nn.Module):
        def __init__(self, num_encoder_layers, num_decoder_layers, emb_size, nhead, src_vocab_size, tgt_vocab_size,
                     dim_feedforward=512, dropout=0.1):  # fmt: skip
            super().__init__()
            self.transformer = nn.Transformer(
                d_model=emb_size,
                nhead=nhead,
                num_encoder_layers=num_encoder_layers,
                num_decoder_layers=num_decoder_layers,
                dim_feedforward=dim_feedforward,
                dropout=dropout,
            )
            self.generator = nn.Linear(emb_size, tgt_vocab_size)
            self.src_tok_emb = TokenEmbedding(src_vocab_size, emb_size)
            self.tgt_tok_emb = TokenEmbedding(tgt_vocab_size, emb_size)
            self.positional_encoding = PositionalEncoding(emb_size, dropout=dropout)

        def forward(self, src, trg, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, memory_key_padding_mask):
            src_emb = self.positional_encoding(self.src_tok_emb(src))
            tgt_emb = self.positional_encoding(self.tgt_tok_emb(trg))
            outs = self.transformer(
                src_emb, tgt_emb, src_mask, tgt_mask, None, src_padding_mask, tgt_padding_mask, memory_key_padding_mask
            )
            return self.generator(outs)

        def encode(self, src, src_mask):
            return self.transformer.encoder(self.positional_encoding(self.src_tok_emb(src)), src_mask)

        def decode(self, tgt, memory, tgt_mask):
            return self.transformer.decoder(self.positional_encoding(self.tgt_tok_emb(tgt)), memory, tgt_mask)

    model = Seq2SeqTransformer(layers, layers, emb_size, nhead, src_vocab, tgt_vocab, ffn, dropout=0.0)
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    return model


def generate_square_subsequent_mask(torch, sz):
    mask = (torch.triu(torch.ones((sz, sz))) == 1).transpose(0, 1)
    mask = mask.float().masked_fill(mask == 0, float("-inf")).masked_fill(mask == 1, float(0.0))
    return mask


def create_mask(torch, src, tgt):
    src_seq_len = src.shape[0]
    tgt_seq_len = tgt.shape[0]
    tgt_mask = generate_square_subsequent_mask(torch, tgt_seq_len)
    src_mask = torch.zeros((src_seq_len, src_seq_len)).type(torch.bool)
    src_padding_mask = (src == PAD_IDX).transpose(0, 1)
    tgt_padding_mask = (tgt == PAD_IDX).transpose(0, 1)
    return src_mask, tgt_mask, src_padding_mask, tgt_padding_mask


def translation_pairs(n=8, seed=0):
    """Token-id sentences: the target is the source shifted by one id, reversed (ids >= 4; 0..3 are specials)."""
    r = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        src = r.integers(4, 10, int(r.integers(2, 6))).tolist()
        pairs.append((src, [t + 0 for t in reversed(src)]))
    return pairs


def train_translation(torch, model, pairs, epochs=2, compile=_identity):
    pad_sequence = torch.nn.utils.rnn.pad_sequence

    def tensor_transform(token_ids):
        return torch.cat((torch.tensor([BOS_IDX]), torch.tensor(token_ids), torch.tensor([EOS_IDX])))

    def collate_fn(batch):
        src_batch, tgt_batch = [], []
        for src_sample, tgt_sample in batch:
            src_batch.append(tensor_transform(src_sample))
            tgt_batch.append(tensor_transform(tgt_sample))
        src_batch = pad_sequence(src_batch, padding_value=PAD_IDX)
        tgt_batch = pad_sequence(tgt_batch, padding_value=PAD_IDX)
        return src_batch, tgt_batch

    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=PAD_IDX)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.98), eps=1e-9)

    def train_step(src, tgt_input, tgt_out, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask):
        logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, src_padding_mask)
        optimizer.zero_grad()
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss

    step = compile(train_step)

    def train_epoch():
        model.train()
        losses = 0
        train_dataloader = torch.utils.data.DataLoader(pairs, batch_size=4, collate_fn=collate_fn)
        for src, tgt in train_dataloader:
            tgt_input = tgt[:-1, :]
            src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(torch, src, tgt_input)
            tgt_out = tgt[1:, :]
            loss = step(src, tgt_input, tgt_out, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask)
            losses += loss.item()
        return losses / len(list(train_dataloader))

    def evaluate():
        model.eval()
        losses = 0
        val_dataloader = torch.utils.data.DataLoader(pairs, batch_size=4, collate_fn=collate_fn)
        with torch.no_grad():
            for src, tgt in val_dataloader:
                tgt_input = tgt[:-1, :]
                src_mask, tgt_mask, src_padding_mask, tgt_padding_mask = create_mask(torch, src, tgt_input)
                logits = model(src, tgt_input, src_mask, tgt_mask, src_padding_mask, tgt_padding_mask, src_padding_mask)
                tgt_out = tgt[1:, :]
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
                losses += loss.item()
        return losses / len(list(val_dataloader))

    def greedy_decode(model, src, src_mask, max_len, start_symbol):
        memory = model.encode(src, src_mask)
        ys = torch.ones(1, 1).fill_(start_symbol).type(torch.long)
        for _i in range(max_len - 1):
            tgt_mask = generate_square_subsequent_mask(torch, ys.size(0)).type(torch.bool)
            out = model.decode(ys, memory, tgt_mask)
            out = out.transpose(0, 1)
            prob = model.generator(out[:, -1])
            _, next_word = torch.max(prob, dim=1)
            next_word = next_word.item()
            ys = torch.cat([ys, torch.ones(1, 1).type_as(src.data).fill_(next_word)], dim=0)
            if next_word == EOS_IDX:
                break
        return ys

    def translate(src_tokens):
        model.eval()
        src = tensor_transform(src_tokens).view(-1, 1)
        num_tokens = src.shape[0]
        src_mask = torch.zeros(num_tokens, num_tokens).type(torch.bool)
        tgt_tokens = greedy_decode(model, src, src_mask, max_len=num_tokens + 5, start_symbol=BOS_IDX).flatten()
        return tgt_tokens.tolist()

    train_losses, val_losses = [], []
    for _epoch in range(epochs):
        train_losses.append(train_epoch())
        val_losses.append(evaluate())
    return {"train": train_losses, "val": val_losses, "translation": translate(pairs[0][0])}


# -- e. the transfer-learning tutorial's training loop, and the saving-and-loading tutorial ------------------------
def _small_cnn(torch):
    nn = torch.nn

    class SmallCNN(nn.Module):
        """Stands in for a pretrained ResNet: a feature extractor and a final `fc` layer to replace."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((2, 2))
            )
            self.fc = nn.Linear(16, 5)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))

    return SmallCNN


def build_small_cnn(torch, num_classes=2):
    model = _module_class(torch, "SmallCNN", _small_cnn)()
    for param in model.features.parameters():  # as a fixed feature extractor, the ConvNet's weights are frozen
        param.requires_grad = False
    num_ftrs = model.fc.in_features
    model.fc = torch.nn.Linear(num_ftrs, num_classes)
    return model


def train_transfer(torch, model, images, labels, num_epochs=3):
    """The tutorial's train_model: phases, set_grad_enabled, StepLR, the best weights kept by deepcopy."""
    nn = torch.nn
    ds = {
        "train": torch.utils.data.TensorDataset(torch.from_numpy(images[:12]), torch.from_numpy(labels[:12])),
        "val": torch.utils.data.TensorDataset(torch.from_numpy(images[12:]), torch.from_numpy(labels[12:])),
    }
    dataloaders = {x: torch.utils.data.DataLoader(ds[x], batch_size=4, shuffle=False) for x in ["train", "val"]}
    dataset_sizes = {x: len(ds[x]) for x in ["train", "val"]}
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")

    best_model_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    history = []
    for _epoch in range(num_epochs):
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            running_loss = 0.0
            running_corrects = 0
            for inputs, labels_ in dataloaders[phase]:
                inputs = inputs.to(device)
                labels_ = labels_.to(device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels_)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels_.data)
            if phase == "train":
                scheduler.step()
            epoch_loss = running_loss / dataset_sizes[phase]
            epoch_acc = running_corrects.double() / dataset_sizes[phase]
            history.append((phase, epoch_loss, epoch_acc.item(), str(epoch_acc.dtype)))
            if phase == "val" and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_model_wts = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_model_wts)
    return {"history": history, "best_acc": float(best_acc), "lr": scheduler.get_last_lr()}


def save_and_load(torch, build, model, save_dir):
    """The "Saving and loading models" tutorial, the parts without TorchScript."""
    nn, optim = torch.nn, torch.optim
    out = {}
    optimizer = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    x = torch.from_numpy(np.linspace(-1, 1, 2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6))
    loss = model(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    out["state_keys"] = [(k, tuple(v.size())) for k, v in model.state_dict().items()]
    out["optim_keys"] = sorted(optimizer.state_dict()["param_groups"][0])

    # state_dict only
    path = os.path.join(save_dir, "model_weights.pth")
    torch.save(model.state_dict(), path)
    m2 = build(torch)
    m2.load_state_dict(torch.load(path, weights_only=True))
    m2.eval()
    model.eval()
    out["same_after_load"] = bool(torch.equal(m2(x), model(x)))

    # a general checkpoint for resuming
    path = os.path.join(save_dir, "checkpoint.tar")
    torch.save(
        {
            "epoch": 5,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": loss,
        },  # fmt: skip
        path,
    )
    m3 = build(torch)
    opt3 = optim.SGD(m3.parameters(), lr=0.5, momentum=0.1)
    checkpoint = torch.load(path, weights_only=True)
    m3.load_state_dict(checkpoint["model_state_dict"])
    opt3.load_state_dict(checkpoint["optimizer_state_dict"])
    out["epoch"], out["loss"] = checkpoint["epoch"], checkpoint["loss"].item()
    out["resumed_lr"] = opt3.param_groups[0]["lr"]
    m3.train()
    opt3.zero_grad()
    m3(x).pow(2).mean().backward()
    opt3.step()
    out["resumed_fc"] = m3.fc.weight.detach().numpy().copy()

    # warm-starting a different model from some of the parameters: strict=False
    class Wider(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = build(torch).features
            self.fc = nn.Linear(16, 2)
            self.extra = nn.Linear(2, 2)

    wide = Wider()
    res = wide.load_state_dict(torch.load(os.path.join(save_dir, "model_weights.pth"), weights_only=True), strict=False)
    out["missing"], out["unexpected"] = sorted(res.missing_keys), sorted(res.unexpected_keys)
    out["warm_fc_equal"] = bool(torch.equal(wide.fc.weight, model.fc.weight))

    # several models in one file, loaded onto the CPU with map_location
    path = os.path.join(save_dir, "two.tar")
    torch.save({"modelA_state_dict": model.state_dict(), "modelB_state_dict": m3.state_dict()}, path)
    both = torch.load(path, map_location=torch.device("cpu"), weights_only=True)
    out["two_keys"] = sorted(both)

    # the whole model, pickled
    path = os.path.join(save_dir, "whole.pth")
    torch.save(model, path)
    whole = torch.load(path, weights_only=False)
    whole.eval()
    out["whole_same"] = bool(torch.equal(whole(x), model(x)))
    return out


def spawn_worker(rank, lib, shared, fail_rank):
    """A process of torch.multiprocessing.spawn: writes its element of the shared tensor, or fails."""
    if rank == fail_rank:
        raise ValueError(f"worker {rank} fails on purpose")
    shared[rank] = rank + 1.0
