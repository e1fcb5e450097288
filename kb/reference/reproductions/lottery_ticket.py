"""The lottery ticket hypothesis, one-shot magnitude pruning on a small MLP [@frankle2019lottery].

Train a dense MLP, keep the largest-magnitude weights of each layer (the output layer pruned at
half the rate, as in the paper), and retrain that sparse network twice: from the *original*
initial weights (the winning ticket) and from a fresh random initialisation (the control).
The data: Gaussian inputs labelled by a random teacher network (10 classes), so that accuracy
needs capacity.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .._common import generator
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "teacher_data", "magnitude_masks", "train_masked", "run", "figure"]

CLAIM = """A dense network contains sparse subnetworks (winning tickets) that, reset to their original
initial weights and trained in isolation, reach accuracy comparable to the dense network, while the
same sparse structure randomly re-initialised trains to lower accuracy (Frankle and Carbin 2019)."""

QUICK = {"sparsities": (0.95, 0.99), "n_random": 1}


def teacher_data(n: int, dim: int, n_classes: int, seed: int, teacher_seed: int = 123):
    """Gaussian inputs labelled by the argmax of a fixed random tanh network."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(teacher_seed)
        teacher = nn.Sequential(nn.Linear(dim, 64), nn.Tanh(), nn.Linear(64, n_classes))
    x = torch.randn(n, dim, generator=generator(seed))
    with torch.no_grad():
        return x, teacher(x).argmax(1)


def _mlp(dim: int, hidden: tuple[int, ...], n_classes: int, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sizes, layers = (dim, *hidden), []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(sizes[-1], n_classes))


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def magnitude_masks(model: nn.Module, sparsity: float) -> list[torch.Tensor]:
    """Per linear layer, 1 for the weights above that layer's ``sparsity`` quantile of |w| (output layer: half the rate)."""
    masks, linears = [], _linears(model)
    for i, layer in enumerate(linears):
        rate = sparsity / 2 if i == len(linears) - 1 else sparsity
        w = layer.weight.detach().abs().flatten()
        k = int(rate * w.numel())
        threshold = w.kthvalue(k).values if k > 0 else w.min() - 1
        masks.append((layer.weight.detach().abs() > threshold).float())
    return masks


def train_masked(model, masks, x, y, x_test, y_test, n_steps: int, seed: int, lr: float = 1.2e-3) -> float:
    """Adam on mini-batches of 128 with the pruned weights held at zero; returns test accuracy."""
    linears = _linears(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = generator(seed + 1)

    def apply():
        with torch.no_grad():
            for layer, m in zip(linears, masks):
                layer.weight.mul_(m)

    apply()
    for _ in range(n_steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        apply()
    with torch.no_grad():
        return float((model(x_test).argmax(1) == y_test).float().mean())


def run(seed: int = 0, sparsities=(0.8, 0.9, 0.95, 0.98, 0.99), hidden=(300, 100), n_steps: int = 1000,
        n_random: int = 2, dim: int = 32, n_classes: int = 10) -> dict:
    """Dense training, then the ticket vs ``n_random`` random re-initialisations at each sparsity (one-shot pruning)."""
    x, y = teacher_data(4000, dim, n_classes, seed)
    xt, yt = teacher_data(2000, dim, n_classes, seed + 1)
    init = _mlp(dim, tuple(hidden), n_classes, seed)
    dense = copy.deepcopy(init)
    acc_dense = train_masked(dense, [torch.ones_like(m.weight) for m in _linears(dense)], x, y, xt, yt, n_steps, seed)
    ticket, random_init = [], []
    for s in sparsities:
        masks = magnitude_masks(dense, s)
        ticket.append(train_masked(copy.deepcopy(init), masks, x, y, xt, yt, n_steps, seed))
        random_init.append([train_masked(_mlp(dim, tuple(hidden), n_classes, seed + 1000 + k), masks, x, y, xt, yt,
                                         n_steps, seed) for k in range(n_random)])
    mean_random = [sum(r) / len(r) for r in random_init]
    top, mid = len(sparsities) - 1, max(i for i, s in enumerate(sparsities) if s <= 0.95)
    gap_top = ticket[top] - mean_random[top]
    passed = abs(ticket[mid] - acc_dense) <= 0.03 and gap_top >= 0.04 and ticket[top] > max(random_init[top])
    return result(
        CLAIM,
        f"Inputs in {dim} dimensions labelled by a random teacher network ({n_classes} classes; 4000 training, "
        f"2000 test points); an MLP {dim}-{'-'.join(map(str, hidden))}-{n_classes} trained {n_steps} Adam steps; "
        f"one-shot magnitude pruning per layer at sparsities {list(sparsities)}; the pruned network retrained from "
        f"its original initialisation (ticket) and from {n_random} new random ones (control), same steps.",
        {"dense_accuracy": acc_dense, "ticket_accuracy": dict(zip(map(str, sparsities), ticket)),
         "random_reinit_accuracy": dict(zip(map(str, sparsities), mean_random)),
         "sparsity_top": sparsities[top], "ticket_minus_random_at_top": gap_top,
         "sparsity_mid": sparsities[mid], "ticket_minus_dense_at_mid": ticket[mid] - acc_dense,
         "ticket_minus_dense_at_top": ticket[top] - acc_dense},
        "ticket_minus_random_at_top",
        f"passes when at {sparsities[mid]:.0%} sparsity the ticket is within 0.03 of the dense accuracy, and at "
        f"{sparsities[top]:.0%} it beats every random re-initialisation and their mean by at least 0.04",
        passed,
        {"sparsity": list(sparsities), "ticket": ticket, "random": mean_random, "dense": acc_dense},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, width=5.0) as (fig, ax):
        remaining = [100 * (1 - s) for s in c["sparsity"]]
        ax.semilogx(remaining, c["ticket"], marker="o", label="winning ticket (original init)")
        ax.semilogx(remaining, c["random"], marker="x", label="same mask, random re-init (mean)")
        ax.axhline(c["dense"], color="k", ls="--", lw=1, label="dense")
        ax.invert_xaxis(), ax.set_xlabel("weights remaining (%)"), ax.set_ylabel("test accuracy"), ax.legend(fontsize=7)
