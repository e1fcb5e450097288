"""Toy models of superposition: features in superposition appear as sparsity rises [@elhage2022toy].

The ReLU output model ``x' = ReLU(W^T W x + b)`` compresses ``n`` features into ``m < n`` hidden
dimensions. Feature ``i`` has importance ``0.9**i`` and is zero with probability ``S`` (else
uniform in [0, 1]). With dense features the model keeps the ``m`` most important ones on
orthogonal directions (like PCA); as ``S`` rises it packs more features than dimensions.
"""

from __future__ import annotations

import torch

from .._common import generator
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "train_toy_model", "run", "figure"]

CLAIM = """With dense features a ReLU-output toy model stores only as many features as it has hidden
dimensions; as the features become sparse it stores more features than dimensions, in superposition
(Elhage et al. 2022)."""

QUICK = {"sparsities": (0.0, 0.9), "n_steps": 800, "lr": 1e-2}


def train_toy_model(sparsity: float, n_features: int = 20, n_hidden: int = 5, n_steps: int = 3000,
                    batch_size: int = 1024, lr: float = 1e-3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``ReLU(W^T W x + b)`` to ``x`` with importance-weighted squared error; returns ``(W (m, n), b (n,))``."""
    g = generator(seed)
    importance = 0.9 ** torch.arange(n_features, dtype=torch.float32)
    W = (torch.randn(n_hidden, n_features, generator=g) * (2 / (n_features + n_hidden)) ** 0.5).requires_grad_()
    b = torch.zeros(n_features, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    for _ in range(n_steps):
        x = torch.rand(batch_size, n_features, generator=g) * (torch.rand(batch_size, n_features, generator=g) >= sparsity)
        loss = (importance * (x - torch.relu(x @ W.T @ W + b)) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach(), b.detach()


def run(seed: int = 0, sparsities=(0.0, 0.7, 0.9, 0.97, 0.99), n_features: int = 20, n_hidden: int = 5,
        n_steps: int = 3000, lr: float = 1e-3) -> dict:
    """Train one toy model per sparsity; count the features it represents (``||W_i|| > 0.5``)."""
    represented, dims_per_feature, gram = [], [], []
    for s in sparsities:
        W, _ = train_toy_model(s, n_features, n_hidden, n_steps, lr=lr, seed=seed)
        represented.append(int((W.norm(dim=0) > 0.5).sum()))
        dims_per_feature.append(n_hidden / float(W.pow(2).sum()))  # m / ||W||_F^2, the paper's measure
        gram.append(W.T @ W)
    dense, sparse = represented[0], represented[-1]
    passed = sparsities[0] == 0.0 and dense <= n_hidden + 1 and sparse >= 2 * n_hidden
    return result(
        CLAIM,
        f"{n_features} features of importance 0.9^i, {n_hidden} hidden dimensions, ReLU output model, Adam for "
        f"{n_steps} steps of 1024 samples at each sparsity S in {list(sparsities)}; a feature counts as represented "
        "when its column of W has norm above 0.5.",
        {"represented_dense": dense, "represented_sparsest": sparse, "hidden_dims": n_hidden,
         "dims_per_feature_sparsest": dims_per_feature[-1]},
        "represented_sparsest",
        f"passes when the dense model (S=0) represents at most {n_hidden + 1} features and the sparsest "
        f"(S={sparsities[-1]}) at least {2 * n_hidden}, twice its {n_hidden} dimensions",
        passed,
        {"sparsity": list(sparsities), "represented": represented, "dims_per_feature": dims_per_feature,
         "gram_dense": gram[0], "gram_sparsest": gram[-1]},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=3, width=3.6) as (fig, (ax, g0, g1)):
        labels = [str(s) for s in c["sparsity"]]
        ax.bar(labels, c["represented"], color="tab:blue")
        ax.axhline(res["measured"]["hidden_dims"], color="k", ls="--", lw=1, label="hidden dimensions")
        ax.set_xlabel("sparsity S"), ax.set_ylabel("features represented"), ax.legend(fontsize=7)
        for a, key, title in ((g0, "gram_dense", f"W^T W, S={labels[0]}"), (g1, "gram_sparsest", f"W^T W, S={labels[-1]}")):
            a.imshow(c[key], cmap="RdBu_r", vmin=-1, vmax=1)
            a.set_title(title, fontsize=9), a.set_xticks([]), a.set_yticks([])
