#!/usr/bin/env python3
"""PyTorch baseline for `npm run bench -- retriever` (driven by bench/retriever.ts; not a test).

A small re-implementation of the official LRURec training step and validation pass (LlamaRec code base:
model/lru.py, trainer/lru.py, trainer/base.py), written for this benchmark to match their semantics and
their cost on CPU:
  * model: item embedding -> dropout -> layer norm; blocks of [LRU layer with complex (cfloat) in/out
    projections and the log-depth parallel scan over left padding to a power of two, dropout, residual,
    layer norm; position-wise feed-forward d -> 4d -> d with exact GELU, dropout, residual, layer norm];
    logits = hidden . item-embedding^T + bias for EVERY position (B x L x V);
  * training step: zero_grad -> cross-entropy over all items (ignore_index 0) -> backward ->
    clip_grad_norm_(5) -> AdamW (lr 1e-3, eps 1e-9, weight decay 0.01 except "bias"/"layer_norm" names);
  * validation pass: eval mode, no_grad, scores of the last position of every sequence, no history
    exclusion (the official validate() passes exclude_history=False), Recall/MRR/NDCG@{1,5,10,20,50} from a
    full descending argsort of every score row.

Input: a JSON file written by bench/retriever.ts (the very batches and users llamarec measures).
Output: one JSON line on stdout (timings in seconds, torch version, BLAS library, threads, peak RSS).
"""
import json
import math
import os
import resource
import sys
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="Complex modules")


def loaded_blas():
    """Shared libraries of this process that look like a BLAS (what torch's GEMMs actually call)."""
    libs = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path).lower()
                if any(k in name for k in ("blas", "mkl", "blis", "atlas")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


class Lru(nn.Module):
    """Diagonal complex linear recurrence h_t = lambda * h_{t-1} + gamma * (B x_t), read out by Re(C h_t)."""

    def __init__(self, d, dropout, r_min=0.8, r_max=0.99):
        super().__init__()
        n = 2 * d
        ring = torch.rand(n) * (r_max**2 - r_min**2) + r_min**2
        nu_log = torch.log(-0.5 * torch.log(ring))
        theta_log = torch.log(torch.rand(n) * 2 * math.pi)
        modulus = torch.exp(-torch.exp(nu_log))
        gamma_log = torch.log(torch.sqrt(1 - modulus**2))
        self.params_log = nn.Parameter(torch.stack([nu_log, theta_log, gamma_log]))
        self.in_proj = nn.Linear(d, n).to(torch.cfloat)
        self.out_proj = nn.Linear(n, d).to(torch.cfloat)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(d)

    def scan(self, u, lam, mask):
        # Up-sweep over blocks of 2, 4, ..., L positions: the second half of every block adds lambda^k times
        # the last state of its first half (zero where that position is padding). L is a power of two.
        b, length, n = u.shape
        powers = lam  # lambda^1 .. lambda^(half)
        size = 2
        while size <= length:
            half = size // 2
            if size > 2:
                powers = torch.cat([powers, powers * powers[-1]], 0)
            blocks = u.reshape(b * length // size, size, n)
            gate = mask.reshape(b * length // size, size)[:, half - 1 : half].unsqueeze(-1)
            first, second = blocks[:, :half], blocks[:, half:]
            second = second + powers * first[:, -1:] * gate
            u = torch.cat([first, second], 1).reshape(b, length, n)
            size *= 2
        return u

    def forward(self, x, mask):
        nu, theta, gamma = torch.exp(self.params_log).split(1)
        lam = torch.exp(torch.complex(-nu, theta))  # [1, n]
        u = self.in_proj(x.to(torch.cfloat)) * gamma
        h = self.scan(u, lam, mask)
        y = self.dropout(self.out_proj(h).real) + x
        return self.layer_norm(y)


class FeedForward(nn.Module):
    def __init__(self, d, dropout):
        super().__init__()
        self.w_1 = nn.Linear(d, 4 * d)
        self.w_2 = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, x):
        inner = self.dropout(F.gelu(self.w_1(x)))
        return self.layer_norm(self.dropout(self.w_2(inner)) + x)


class LruRec(nn.Module):
    def __init__(self, num_items, d, blocks, dropout):
        super().__init__()
        self.token = nn.Embedding(num_items + 1, d)
        self.embed_layer_norm = nn.LayerNorm(d)
        self.embed_dropout = nn.Dropout(dropout)
        self.lrus = nn.ModuleList([Lru(d, dropout) for _ in range(blocks)])
        self.ffns = nn.ModuleList([FeedForward(d, dropout) for _ in range(blocks)])
        self.bias = nn.Parameter(torch.zeros(num_items + 1))
        with torch.no_grad():  # truncated normal N(0, 0.02^2) on [-0.04, 0.04], as the official init
            for name, p in self.named_parameters():
                if "layer_norm" in name or "params_log" in name:
                    continue
                target = torch.view_as_real(p) if p.is_complex() else p
                nn.init.trunc_normal_(target, 0.0, 0.02, -0.04, 0.04)

    def forward(self, seqs):
        mask = seqs > 0
        x = self.embed_layer_norm(self.embed_dropout(self.token(seqs)))
        length = seqs.shape[1]
        padded = 1 << math.ceil(math.log2(length))
        x = F.pad(x, (0, 0, padded - length, 0))
        mask = F.pad(mask, (padded - length, 0))
        for lru, ffn in zip(self.lrus, self.ffns):
            x = ffn(lru(x, mask))
        x = x[:, -length:]
        return x @ self.token.weight.t() + self.bias  # [B, L, V]


def metrics_at(scores, labels, ks):
    order = torch.argsort(scores, dim=1, descending=True)
    hits = (order == labels.unsqueeze(1)).float()
    out = {}
    for k in ks:
        h = hits[:, :k]
        out[f"Recall@{k}"] = h.sum(1).mean().item()
        out[f"MRR@{k}"] = (h / torch.arange(1, k + 1)).sum(1).mean().item()
        out[f"NDCG@{k}"] = (h / torch.log2(torch.arange(2, k + 2).float())).sum(1).mean().item()
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    threads = int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    s = spec["settings"]
    B, L, V = s["batchSize"], s["maxLen"], s["numItems"]
    model = LruRec(V, s["hiddenDim"], s["numBlocks"], s["dropout"])
    decay = [p for n, p in model.named_parameters() if "bias" not in n and "layer_norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "layer_norm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, eps=1e-9
    )
    ce = nn.CrossEntropyLoss(ignore_index=0)
    batches = [
        (torch.tensor(b["tokens"], dtype=torch.long).view(B, L), torch.tensor(b["labels"], dtype=torch.long).view(B, L))
        for b in spec["trainBatches"]
    ]

    def step(seqs, labels):
        model.train()
        opt.zero_grad()
        logits = model(seqs)
        loss = ce(logits.view(-1, logits.shape[-1]), labels.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    step(*batches[0])  # warm-up
    step_seconds, step_cpu, losses = [], [], []
    for i in range(spec["iterations"]):
        seqs, labels = batches[(i + 1) % len(batches)]
        c = time.process_time()
        t = time.perf_counter()
        losses.append(step(seqs, labels))
        step_seconds.append(time.perf_counter() - t)
        step_cpu.append(time.process_time() - c)

    val = spec["val"]
    vb = val["batchSize"]
    tokens = torch.tensor(val["tokens"], dtype=torch.long).view(-1, L)
    labels = torch.tensor(val["labels"], dtype=torch.long)
    ks = [1, 5, 10, 20, 50]

    def validate():
        model.eval()
        sums = {}
        with torch.no_grad():
            for start in range(0, tokens.shape[0], vb):
                scores = model(tokens[start : start + vb])[:, -1, :]
                for k, v in metrics_at(scores, labels[start : start + vb], ks).items():
                    sums[k] = sums.get(k, 0.0) + v
        return sums

    eval_seconds = []
    for _ in range(spec["evalRepeats"]):
        t = time.perf_counter()
        validate()
        eval_seconds.append(time.perf_counter() - t)

    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "blas": loaded_blas(),
                "blasInfo": next(
                    (p for p in torch.__config__.show().replace(",", "\n").split("\n") if "BLAS_INFO" in p), ""
                ).strip(),
                "threads": torch.get_num_threads(),
                "stepSeconds": step_seconds,
                "stepCpuSeconds": step_cpu,
                "losses": losses,
                "evalSeconds": eval_seconds,
                "evalUsers": int(tokens.shape[0]),
                "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
