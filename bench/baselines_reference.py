#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- baselines` (driven by bench/baselines.ts; not a test).

A small re-implementation, written for this benchmark, of the training step of the LlamaRec authors'
baseline models (github.com/Yueeeeeeee/RecSys-Extraction-Attack: model/sasrec.py, model/bert.py,
model/narm.py, model/attention.py) as the LlamaRec paper trains them (cross-entropy over all items,
AdamW lr 1e-3 eps 1e-9 weight decay 0.01 except "bias"/"layer_norm" names, clip_grad_norm_ 5 over all
parameters as the LlamaRec trainer), matching their semantics and their cost on CPU:
  * SASRec: token (padding_idx 0) + learned positions (1..n from the first item, 0 on padding) -> dropout ->
    blocks of [q = LN(x); causal masked softmax(QK^T/sqrt(dk)) over the full L x L with -1e9 fills, attention
    dropout, no output projection; x = LN(attn + q); position-wise Conv1d(k=1) d -> 4d -> d with ReLU and
    dropout, residual, LN] -> logits x E^T for EVERY position [B, L, V + 1];
  * BERT4Rec: (token + mask token) + positions -> LN -> dropout -> blocks of [x = LN(x + dropout(W_o
    attention(x))), padding keys masked; x = LN(x + dropout(W_2 GELU(W_1 x)))] -> GELU(W x) -> logits
    x E^T + bias for every position [B, L, V + 2];
  * NARM: embedding -> dropout -> GRU (hidden 2d) over packed right-padded sequences -> global state and
    hard-sigmoid attention local state -> dropout([c_g | c_l]) . (B E)^T, logits [B, V + 1].
  Their LayerNorm (unbiased std + 1e-6) and tanh-GELU.

Input: a JSON file written by bench/baselines.ts: per model the very batches llamarec measures (left-padded
tokens and labels; NARM's label is at the last position and its prefix is re-packed right-padded here).
Output: one JSON line on stdout (per model: step seconds, CPU seconds, losses; torch version, BLAS, threads).

`init`: "authors" (their truncated normal on the model's weights, embeddings of SASRec/BERT4Rec left at
torch's N(0, 1)) or "llamarec" (truncated normal on every weight except layer norms, as llamarec's models).
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def loaded_blas():
    libs = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                path = parts[-1] if len(parts) >= 6 else ""
                name = os.path.basename(path).lower()
                if any(k in name for k in ("blas", "mkl", "blis", "atlas")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def trunc_normal_(p):
    nn.init.trunc_normal_(p, 0.0, 0.02, -0.04, 0.04)


# spec "variant": "llamarec": llamarec's layer norm (biased variance, eps 1e-5 inside the root), exact GELU and
# zero attention output for queries inside the left padding, to compare the two implementations weight for
# weight; default: the authors' versions.
VARIANT = {"llamarec": False}


class LayerNorm(nn.Module):
    """The authors' layer norm: (x - mean) / (unbiased std + eps)."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        if VARIANT["llamarec"]:
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, 1e-5)
        mu = x.mean(-1, keepdim=True)
        return self.weight * (x - mu) / (x.std(-1, keepdim=True) + self.eps) + self.bias


def gelu_tanh(x):
    if VARIANT["llamarec"]:
        return F.gelu(x)
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def torch_name(ours, model):
    """llamarec's parameter names (src/retrievers/*.ts) -> this file's."""
    if model == "sasrec":
        for a, b in (
            ("embedding.token.", "token."),
            ("embedding.position.", "position."),
            (".attention.layer_norm.", ".attn_layer_norm."),
            (".feed_forward.layer_norm.", ".ff_layer_norm."),
            (".feed_forward.", "."),
        ):
            ours = ours.replace(a, b)
        return "blocks." + ours[len("model.") :] if ours.startswith("model.") else ours
    for a, b in (
        ("embedding.token.", "token."),
        ("embedding.position.", "position."),
        ("embedding.layer_norm.", "embed_layer_norm."),
        ("model.transformer_blocks.", "blocks."),
        (".feed_forward.", "."),
        (".input_sublayer.layer_norm.", ".input_layer_norm."),
        (".output_sublayer.layer_norm.", ".output_layer_norm."),
    ):
        ours = ours.replace(a, b)
    return ours[len("model.") :] if ours.startswith("model.") else ours


def positions(x):
    """1..n from a row's first item, 0 on padding (left-padded rows)."""
    valid = x > 0
    n = valid.sum(-1, keepdim=True)
    pos = n + torch.arange(-(x.size(1) - 1), 1, device=x.device)
    return pos * valid


def attention(q, k, v, mask, drop, causal):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(mask == 0, -1e9)
    if causal:
        scores = scores.masked_fill(torch.tril(torch.ones_like(scores)) == 0, -1e9)
    return drop(F.softmax(scores, dim=-1)) @ v


class Mha(nn.Module):
    def __init__(self, d, heads, p_attn, causal, output_linear):
        super().__init__()
        self.h = heads
        self.causal = causal
        self.linear_layers = nn.ModuleList([nn.Linear(d, d) for _ in range(3)])
        self.dropout = nn.Dropout(p_attn)
        self.output_linear = nn.Linear(d, d) if output_linear else None

    def forward(self, query, key, value, mask):
        b = query.size(0)
        q, k, v = [
            lin(x).view(b, -1, self.h, x.size(-1) // self.h).transpose(1, 2)
            for lin, x in zip(self.linear_layers, (query, key, value))
        ]
        x = attention(q, k, v, mask, self.dropout, self.causal)
        if VARIANT["llamarec"]:  # llamarec: a query inside the left padding has no keys and outputs 0
            x = x * mask[:, :, 0, :].unsqueeze(-1)
        x = x.transpose(1, 2).contiguous().view(b, -1, q.size(-1) * self.h)
        return self.output_linear(x) if self.output_linear is not None else x


class SasBlock(nn.Module):
    def __init__(self, d, heads, p, p_attn):
        super().__init__()
        self.layer_norm = LayerNorm(d)
        self.attention = Mha(d, heads, p_attn, True, False)
        self.attn_layer_norm = LayerNorm(d)
        self.conv1 = nn.Conv1d(d, 4 * d, 1)
        self.conv2 = nn.Conv1d(4 * d, d, 1)
        self.dropout = nn.Dropout(p)
        self.ff_layer_norm = LayerNorm(d)

    def forward(self, x, mask):
        q = self.layer_norm(x)
        x = self.attn_layer_norm(self.attention(q, x, x, mask) + q)
        inner = self.dropout(F.relu(self.conv1(x.permute(0, 2, 1))))
        return self.ff_layer_norm(self.dropout(self.conv2(inner)).permute(0, 2, 1) + x)


class SasRec(nn.Module):
    def __init__(self, V, L, d, blocks, heads, p, p_attn, init):
        super().__init__()
        self.token = nn.Embedding(V + 1, d, padding_idx=0)
        self.position = nn.Embedding(L + 1, d)
        self.dropout = nn.Dropout(p)
        self.blocks = nn.ModuleList([SasBlock(d, heads, p, p_attn) for _ in range(blocks)])
        init_weights(self, init, embeddings=(self.token, self.position))

    def forward(self, x):
        mask = (x > 0).unsqueeze(1).repeat(1, x.size(1), 1).unsqueeze(1)
        h = self.dropout(self.token(x) + self.position(positions(x)))
        for blk in self.blocks:
            h = blk(h, mask)
        return h @ self.token.weight.t()


class BertBlock(nn.Module):
    def __init__(self, d, heads, p, p_attn):
        super().__init__()
        self.attention = Mha(d, heads, p_attn, False, True)
        self.w_1 = nn.Linear(d, 4 * d)
        self.w_2 = nn.Linear(4 * d, d)
        self.input_layer_norm = LayerNorm(d)
        self.output_layer_norm = LayerNorm(d)
        self.dropout = nn.Dropout(p)

    def forward(self, x, mask):
        x = self.input_layer_norm(x + self.dropout(self.attention(x, x, x, mask)))
        return self.output_layer_norm(x + self.dropout(self.w_2(gelu_tanh(self.w_1(x)))))


class Bert4Rec(nn.Module):
    def __init__(self, V, L, d, blocks, heads, p, p_attn, init):
        super().__init__()
        self.token = nn.Embedding(V + 2, d, padding_idx=0)
        self.position = nn.Embedding(L + 1, d)
        self.embed_layer_norm = LayerNorm(d)
        self.dropout = nn.Dropout(p)
        self.blocks = nn.ModuleList([BertBlock(d, heads, p, p_attn) for _ in range(blocks)])
        self.linear = nn.Linear(d, d)
        self.bias = nn.Parameter(torch.zeros(V + 2))
        init_weights(self, init, embeddings=(self.token, self.position))

    def forward(self, x):
        mask = (x > 0).unsqueeze(1).repeat(1, x.size(1), 1).unsqueeze(1)
        h = self.dropout(self.embed_layer_norm(self.token(x) + self.position(positions(x))))
        for blk in self.blocks:
            h = blk(h, mask)
        return gelu_tanh(self.linear(h)) @ self.token.weight.t() + self.bias


class Narm(nn.Module):
    def __init__(self, V, d, p, p_attn):
        super().__init__()
        H = 2 * d
        self.token = nn.Embedding(V + 1, d)
        self.embed_dropout = nn.Dropout(p)
        self.gru = nn.GRU(d, H, num_layers=1, batch_first=True)
        self.a_global = nn.Linear(H, H, bias=False)
        self.a_local = nn.Linear(H, H, bias=False)
        self.v_vector = nn.Linear(H, 1, bias=False)
        self.proj_dropout = nn.Dropout(p_attn)
        self.b_vetor = nn.Linear(d, 2 * H, bias=False)
        with torch.no_grad():
            for q in self.parameters():  # theirs: every weight, the embedding and GRU included
                trunc_normal_(q)

    def forward(self, x, lengths):
        mask = (x > 0)[:, : int(lengths.max())].float()
        e = self.embed_dropout(self.token(x))
        packed = nn.utils.rnn.pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        out, hidden = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        c_global = hidden[-1]
        s2 = self.a_local(out)
        s1 = mask.unsqueeze(2) * self.a_global(c_global).unsqueeze(1)
        alpha = torch.clamp((s1 + s2) / 6 + 0.5, 0.0, 1.0)
        attn = self.v_vector(alpha).squeeze(-1)
        attn = F.softmax(attn.masked_fill(mask == 0, -1e9), dim=-1)
        c_local = (attn.unsqueeze(2) * out).sum(1)
        proj = self.proj_dropout(torch.cat([c_global, c_local], 1))
        return proj @ self.b_vetor(self.token.weight).t()


def init_weights(model, init, embeddings):
    emb = {id(e.weight) for e in embeddings}
    with torch.no_grad():
        for name, q in model.named_parameters():
            if "layer_norm" in name:
                continue
            if init == "authors" and id(q) in emb:
                continue  # theirs: torch's N(0, 1) for the embeddings
            trunc_normal_(q)
        model.token.weight[0].zero_()


def optimizer(model, lr):
    named = list(model.named_parameters())
    decay = [q for n, q in named if "bias" not in n and "layer_norm" not in n]
    no_decay = [q for n, q in named if "bias" in n or "layer_norm" in n]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-9
    )


def narm_inputs(tokens):
    """Left-padded prefixes -> right-padded rows and lengths (their RNN dataloader's layout)."""
    lengths = (tokens > 0).sum(1)
    right = torch.zeros_like(tokens)
    for r in range(tokens.size(0)):
        n = int(lengths[r])
        if n:
            right[r, :n] = tokens[r, tokens.size(1) - n :]
    return right, lengths.clamp(min=1)


def run_model(name, spec, s, threads):
    B, L, V = s["batchSize"], s["maxLen"], s["numItems"]
    torch.manual_seed(s.get("seed", 42))
    init = s.get("init", "authors")
    p, p_attn = s["dropout"], s.get("attnDropout", s["dropout"])
    d, blocks, heads = s.get("hiddenDim", 64), s.get("numBlocks", 2), s.get("numHeads", 2)
    if name == "sasrec":
        model = SasRec(V, L, d, blocks, heads, p, p_attn, init)
    elif name == "bert4rec":
        model = Bert4Rec(V, L, d, blocks, heads, p, p_attn, init)
    elif name == "narm":
        model = Narm(V, d, p, p_attn)
    else:
        raise ValueError(name)
    if "weights" in spec:  # start from llamarec's weights
        named = dict(model.named_parameters())
        with torch.no_grad():
            for ours, values in spec["weights"].items():
                q = named[torch_name(ours, name)]
                q.copy_(torch.tensor(values, dtype=torch.float32).view(q.shape))
    opt = optimizer(model, s.get("lr", 1e-3))
    ce = nn.CrossEntropyLoss(ignore_index=0)
    params = list(model.parameters())
    batches = []
    for b in spec["batches"]:
        rows = len(b["tokens"]) // L
        t = torch.tensor(b["tokens"], dtype=torch.long).view(rows, L)
        y = torch.tensor(b["labels"], dtype=torch.long).view(rows, L)
        batches.append((*narm_inputs(t), y[:, -1]) if name == "narm" else (t, y))

    def step(*batch):
        model.train()
        opt.zero_grad()
        if name == "narm":
            x, lengths, labels = batch
            loss = ce(model(x, lengths), labels)
        else:
            tokens, labels = batch
            logits = model(tokens)
            loss = ce(logits.view(-1, logits.size(-1)), labels.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return loss.item()

    out = {"stepSeconds": [], "stepCpuSeconds": [], "losses": []}
    count = [0]

    def timed_step(record=True):
        batch = batches[count[0] % len(batches)]
        count[0] += 1
        c = time.process_time()
        t = time.perf_counter()
        loss = step(*batch)
        if record:
            out["stepSeconds"].append(time.perf_counter() - t)
            out["stepCpuSeconds"].append(time.process_time() - c)
            out["losses"].append(loss)

    def first_gradients():
        """Loss and gradients (llamarec names) of the first batch, no optimizer step."""
        model.train()
        opt.zero_grad()
        batch = batches[0]
        if name == "narm":
            loss = ce(model(batch[0], batch[1]), batch[2])
        else:
            logits = model(batch[0])
            loss = ce(logits.view(-1, logits.size(-1)), batch[1].view(-1))
        loss.backward()
        named = dict(model.named_parameters())
        grads = {o: named[torch_name(o, name)].grad.flatten().tolist() for o in spec.get("weights", {})}
        return {"loss": loss.item(), "grads": grads, "scores": next_scores()}

    def next_scores():
        """Inference scores [rows, V + 1] of left-padded evaluation rows (`scoreTokens`), as llamarec's scoreNext:
        NARM over the history (their right-padded packed layout), SASRec at the last position, BERT4Rec at a
        mask token after the history (the oldest position dropped)."""
        if "scoreTokens" not in spec:
            return None
        t = torch.tensor(spec["scoreTokens"], dtype=torch.long).view(-1, L)
        model.eval()
        with torch.no_grad():
            if name == "narm":
                out = model(*narm_inputs(t))
            elif name == "sasrec":
                out = model(t)[:, -1, :]
            else:
                x = torch.cat([t[:, 1:], torch.full((t.size(0), 1), V + 1, dtype=torch.long)], 1)
                out = model(x)[:, -1, : V + 1]
        return out.flatten().tolist()

    out["first"] = first_gradients if "weights" in spec else None
    return out, timed_step


def main():
    spec = json.load(open(sys.argv[1]))
    threads = int(sys.argv[2])
    torch.set_num_threads(threads)
    s = spec["settings"]
    VARIANT["llamarec"] = s.get("variant") == "llamarec"
    if spec.get("gradients"):
        m = spec["models"][0]
        out, _ = run_model(m["name"], m, s, threads)
        print(json.dumps(out["first"]()))
        return
    runners = [(m["name"], *run_model(m["name"], m, s, threads)) for m in spec["models"]]
    # Warm-up, then the models take turns step by step (as llamarec's side), so load hits all alike.
    for _ in range(spec.get("warmup", 1)):
        for _, _, step in runners:
            step(record=False)
    for _ in range(spec["iterations"]):
        for _, _, step in runners:
            step()
    models = {name: {k: v for k, v in out.items() if k != "first"} for name, out, _ in runners}
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "blas": loaded_blas(),
                "blasInfo": next(
                    (q for q in torch.__config__.show().replace(",", "\n").split("\n") if "BLAS_INFO" in q), ""
                ).strip(),
                "threads": torch.get_num_threads(),
                "models": models,
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
