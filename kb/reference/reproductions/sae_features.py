"""A sparse autoencoder recovers planted features from superposed toy data [@sharkey2022taking].

Sparse codes over ``n`` unit-norm ground-truth directions in ``d < n`` dimensions give data with
features in superposition. An SAE with an L1 penalty (``kb.reference.sae.train_sae``,
[@bricken2023monosemanticity]) is scored by the mean max cosine similarity (MMCS) of each planted
direction with its best dictionary atom; PCA, limited to ``d`` orthogonal directions, is the baseline.
"""

from __future__ import annotations

import torch

from .._common import generator
from ..sae import train_sae
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "planted_data", "mmcs", "run", "figure"]

CLAIM = """Trained on activations made of sparse features in superposition, a sparse autoencoder with an
L1 penalty recovers the ground-truth feature directions: nearly every planted direction has a
dictionary atom at cosine close to 1 (Sharkey, Braun and Millidge 2022)."""

QUICK = {"n_steps": 1500, "l1_sweep": False}


def planted_data(n_samples: int, n_features: int, dim: int, p_active: float, seed: int):
    """``(x (N, dim), directions (n_features, dim))``: ``x = codes @ directions``, codes sparse and non-negative."""
    g = generator(seed)
    directions = torch.randn(n_features, dim, generator=g)
    directions = directions / directions.norm(dim=1, keepdim=True)
    codes = (torch.rand(n_samples, n_features, generator=g) < p_active).float()
    codes = codes * torch.rand(n_samples, n_features, generator=g) * 2
    return codes @ directions, directions


def mmcs(directions: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """Per planted direction ``(n,)``: the largest cosine with any column of ``atoms (dim, k)``."""
    a = atoms / atoms.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return (directions @ a).max(1).values


def run(seed: int = 0, n_features: int = 20, dim: int = 10, d_hidden: int = 40, p_active: float = 0.05,
        l1_coeff: float = 1.0, n_steps: int = 2000, l1_sweep: bool = True) -> dict:
    """Train the SAE on planted data; MMCS against PCA; optionally sweep the L1 coefficient."""
    x, directions = planted_data(8192, n_features, dim, p_active, seed)
    sae = train_sae(x, d_hidden, l1_coeff=l1_coeff, n_steps=n_steps, seed=seed)
    cos = mmcs(directions, sae.W_dec)
    with torch.no_grad():
        recon, codes = sae(x)
    fve = float(1 - (x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    pcs = torch.linalg.svd(x - x.mean(0), full_matrices=False).Vh.T  # (dim, dim)
    pca = torch.maximum(mmcs(directions, pcs), mmcs(directions, -pcs))
    measured = {"mmcs": float(cos.mean()), "min_max_cosine": float(cos.min()),
                "recovered_at_0.9": int((cos > 0.9).sum()), "n_features": n_features,
                "mmcs_pca": float(pca.mean()), "variance_explained": fve,
                "active_latents": float((codes > 0).float().sum(1).mean())}
    curves = {"per_feature": cos.sort().values, "per_feature_pca": pca.sort().values}
    if l1_sweep:  # the L1 penalty matters: too little and the dictionary is dense, too much and features die
        sweep = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
        curves["l1"] = list(sweep)
        curves["mmcs_by_l1"] = [float(mmcs(directions, train_sae(x, d_hidden, l1_coeff=c, n_steps=n_steps,
                                                                 seed=seed).W_dec).mean()) for c in sweep]
    passed = measured["mmcs"] >= 0.9 and measured["recovered_at_0.9"] >= 0.9 * n_features and \
        measured["mmcs"] >= measured["mmcs_pca"] + 0.2
    return result(
        CLAIM,
        f"{n_features} unit directions in {dim} dimensions, each active with probability {p_active} at a "
        f"uniform [0, 2] magnitude (8192 samples); an SAE with {d_hidden} latents and L1 coefficient {l1_coeff} "
        f"trained {n_steps} Adam steps; MMCS = mean over planted directions of the best atom's cosine.",
        measured, "mmcs",
        f"passes when MMCS is at least 0.9, at least 90% of the {n_features} planted directions have an atom above "
        "cosine 0.9, and MMCS beats PCA's by at least 0.2",
        passed, curves)


def figure(res: dict, path) -> None:
    c = res["curves"]
    ncols = 2 if "l1" in c else 1
    with new_figure(path, ncols=ncols, width=4.2) as (fig, axes):
        ax = axes[0] if ncols == 2 else axes
        ax.plot(c["per_feature"], marker="o", label="SAE")
        ax.plot(c["per_feature_pca"], marker="x", label="PCA (d directions)")
        ax.set_xlabel("planted feature (sorted)"), ax.set_ylabel("best cosine"), ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        if ncols == 2:
            axes[1].semilogx([max(v, 1e-3) for v in c["l1"]], c["mmcs_by_l1"], marker="o")
            axes[1].set_xlabel("L1 coefficient (0 drawn at 1e-3)"), axes[1].set_ylabel("MMCS")
