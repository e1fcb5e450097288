"""Grokking modular addition, and the Fourier features behind it [@power2022grokking; @nanda2023progress].

An MLP on learned embeddings of ``a`` and ``b`` is trained full-batch with AdamW and strong weight
decay on half of all pairs of ``a + b mod p``. It fits the training pairs within a few hundred
steps; test accuracy follows much later. The embedding's discrete Fourier transform over the
``p`` inputs then concentrates on a few frequencies, the signature of the algorithm Nanda et al.
reverse-engineered (a one-layer transformer there; an MLP here, as in later replications).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._common import generator
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "fourier_concentration", "run", "figure"]

CLAIM = """Trained with weight decay on part of the table of a + b mod p, a network reaches perfect training
accuracy early and perfect test accuracy only much later (grokking; Power et al. 2022), and the
generalising network represents its inputs with a few Fourier frequencies (Nanda et al. 2023)."""

QUICK = {"n_steps": 1500, "lr": 1e-2, "weight_decay": 2.0}


class ModularMLP(nn.Module):
    """``logits = U relu(W [E_a; E_b])``."""

    def __init__(self, p: int, d_embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(p, d_embed)
        self.hidden = nn.Linear(2 * d_embed, hidden)
        self.out = nn.Linear(hidden, p)

    def forward(self, a, b):
        return self.out(F.relu(self.hidden(torch.cat([self.embed(a), self.embed(b)], -1))))


def fourier_concentration(embedding: torch.Tensor, k: int) -> float:
    """Share of the (non-constant) Fourier power of ``embedding (p, d)`` over its rows held by the top ``k`` frequencies."""
    power = torch.fft.rfft(embedding, dim=0).abs().pow(2).sum(1)[1:]
    return float(power.sort(descending=True).values[:k].sum() / power.sum())


def run(seed: int = 0, p: int = 43, train_fraction: float = 0.5, d_embed: int = 64, hidden: int = 128,
        n_steps: int = 4000, lr: float = 5e-3, weight_decay: float = 1.0, top_k: int = 8) -> dict:
    """Full-batch AdamW; accuracy and the embedding's Fourier concentration along training."""
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).T
    y = (a + b) % p
    order = torch.randperm(p * p, generator=generator(seed))
    n_train = int(train_fraction * p * p)
    tr, te = order[:n_train], order[n_train:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ModularMLP(p, d_embed, hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    steps, train_acc, test_acc, conc = [], [], [], []
    every = max(1, n_steps // 80)
    for step in range(n_steps + 1):
        logits = model(a[tr], b[tr])
        if step % every == 0 or step == n_steps:
            with torch.no_grad():
                steps.append(step)
                train_acc.append(float((logits.argmax(1) == y[tr]).float().mean()))
                test_acc.append(float((model(a[te], b[te]).argmax(1) == y[te]).float().mean()))
                conc.append(fourier_concentration(model.embed.weight, top_k))
        if step < n_steps:
            loss = F.cross_entropy(logits, y[tr])
            opt.zero_grad()
            loss.backward()
            opt.step()
    first = lambda accs, level: next((s for s, v in zip(steps, accs) if v >= level), None)  # noqa: E731
    fit_at, grok_at = first(train_acc, 0.99), first(test_acc, 0.95)
    at_fit = conc[steps.index(fit_at)] if fit_at is not None else float("nan")
    n_freq = p // 2
    delay = grok_at / fit_at if fit_at and grok_at else 0.0
    passed = fit_at is not None and grok_at is not None and delay >= 5 and conc[-1] >= 0.7 and conc[-1] >= 1.5 * at_fit
    return result(
        CLAIM,
        f"a + b mod {p}; {train_fraction:.0%} of the {p * p} pairs for training; embeddings of size {d_embed}, one "
        f"hidden ReLU layer of {hidden}; full-batch AdamW (lr {lr}, weight decay {weight_decay}) for {n_steps} steps; "
        f"Fourier concentration = share of the embedding's power in its top {top_k} of {n_freq} frequencies "
        f"(uniform spread: {top_k / n_freq:.2f}).",
        {"train_99_step": fit_at, "test_95_step": grok_at, "grokking_delay": delay, "final_test_accuracy": test_acc[-1],
         "fourier_top_k_at_fit": at_fit, "fourier_top_k_final": conc[-1], "uniform_share": top_k / n_freq},
        "grokking_delay",
        f"passes when test accuracy reaches 0.95 at least 5 times later than training accuracy reaches 0.99, and the "
        f"top {top_k} frequencies finally hold at least 70% of the embedding's Fourier power and 1.5 times their "
        "share at the fit",
        passed,
        {"step": steps, "train_accuracy": train_acc, "test_accuracy": test_acc, "fourier_top_k": conc},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=2, width=4.2) as (fig, (a, b)):
        a.plot(c["step"], c["train_accuracy"], label="train"), a.plot(c["step"], c["test_accuracy"], label="test")
        a.set_xlabel("step"), a.set_ylabel("accuracy"), a.legend(fontsize=7)
        b.plot(c["step"], c["fourier_top_k"], color="tab:purple")
        b.axhline(res["measured"]["uniform_share"], color="k", ls=":", lw=1, label="no Fourier structure")
        b.set_xlabel("step"), b.set_ylabel("embedding power in top frequencies"), b.set_ylim(0, 1), b.legend(fontsize=7)
