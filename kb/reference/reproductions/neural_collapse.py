"""Neural collapse in the terminal phase of training [@papyan2020prevalence].

Train a classifier past zero training error and watch its last-layer features: within-class
variability shrinks relative to the between-class spread (NC1, ``tr(S_W S_B^+) / C``), and the
centred class means approach a simplex equiangular tight frame (NC2: equal norms, pairwise cosine
``-1 / (C - 1)``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._common import generator
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "nc1", "etf_deviation", "run", "figure"]

CLAIM = """Training past zero training error makes the last-layer features collapse onto their class
means: within-class variability relative to between-class variability (NC1) keeps falling after the
training error reaches zero, and the class means approach a simplex equiangular tight frame (NC2)
(Papyan, Han and Donoho 2020)."""

QUICK = {"n_steps": 1000, "width": 64, "per_class": 32}


def nc1(features: torch.Tensor, labels: torch.Tensor) -> float:
    """``tr(S_W S_B^+) / C``: within-class covariance against the pseudo-inverse of the between-class one."""
    classes = labels.unique()
    means = torch.stack([features[labels == c].mean(0) for c in classes])
    centred = features - means[torch.searchsorted(classes, labels)]
    s_w = centred.T @ centred / len(features)
    m = means - features.mean(0)
    s_b = m.T @ m / len(classes)
    return float(torch.trace(s_w @ torch.linalg.pinv(s_b, hermitian=True)) / len(classes))


def etf_deviation(features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """``(mean |cos(mu_c, mu_c') + 1/(C-1)|, std/mean of ||mu_c||)`` of the centred class means; both 0 for a simplex ETF."""
    classes = labels.unique()
    means = torch.stack([features[labels == c].mean(0) for c in classes]) - features.mean(0)
    norms = means.norm(dim=1)
    cos = (means / norms[:, None]) @ (means / norms[:, None]).T
    off = cos[~torch.eye(len(classes), dtype=torch.bool)]
    return float((off + 1 / (len(classes) - 1)).abs().mean()), float(norms.std() / norms.mean())


def run(seed: int = 0, n_classes: int = 5, per_class: int = 64, dim: int = 32, width: int = 128, depth: int = 4,
        n_steps: int = 2000, lr: float = 0.05, weight_decay: float = 5e-4) -> dict:
    """Full-batch SGD on a Gaussian mixture with a batch-normalised MLP; NC1 and NC2 along training."""
    g = generator(seed)
    centres = torch.randn(n_classes, dim, generator=g)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    x = centres[y] + torch.randn(len(y), dim, generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers, d_in = [], dim
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), nn.BatchNorm1d(width), nn.ReLU()]
            d_in = width
        body, head = nn.Sequential(*layers), nn.Linear(width, n_classes)
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps, nc1s, cosdev, normdev, zero_at = [], [], [], [], None
    every = max(1, n_steps // 40)
    for step in range(n_steps + 1):
        body.train()
        loss = F.cross_entropy(head(body(x)), y)
        if step:  # step 0 records the initialisation
            opt.zero_grad()
            loss.backward()
            opt.step()
        record = step % every == 0 or step == n_steps
        if zero_at is not None and not record:
            continue
        body.eval()
        with torch.no_grad():
            h = body(x)
            error = float((head(h).argmax(1) != y).float().mean())
        if zero_at is None and error == 0.0:
            zero_at = step
            at_zero = nc1(h, y)
        if record or step == zero_at:
            steps.append(step), nc1s.append(nc1(h, y))
            c, n = etf_deviation(h, y)
            cosdev.append(c), normdev.append(n)
    if zero_at is None:
        at_zero = float("nan")
    final, cos_final = nc1s[-1], cosdev[-1]
    cos_zero = cosdev[steps.index(zero_at)] if zero_at is not None else float("nan")
    ratio = at_zero / final if zero_at is not None else 0.0
    passed = zero_at is not None and zero_at < n_steps / 4 and ratio >= 5 and cos_final < cos_zero
    return result(
        CLAIM,
        f"{n_classes} Gaussian classes in {dim} dimensions ({per_class} points each), a {depth}-layer batch-normalised "
        f"ReLU MLP of width {width}, full-batch SGD (lr {lr}, momentum 0.9, weight decay {weight_decay}) for "
        f"{n_steps} steps; NC1 and NC2 on the training set's last-layer features (eval mode).",
        {"zero_error_step": zero_at, "nc1_at_zero_error": at_zero, "nc1_final": final, "nc1_reduction": ratio,
         "etf_cosine_deviation_at_zero_error": cos_zero, "etf_cosine_deviation_final": cos_final,
         "mean_norm_spread_final": normdev[-1]},
        "nc1_reduction",
        "passes when training error reaches zero in the first quarter of training, NC1 then falls at least "
        "5-fold by the end, and the class means' cosines move towards -1/(C-1)",
        passed,
        {"step": steps, "nc1": nc1s, "etf_cosine_deviation": cosdev, "norm_spread": normdev, "zero_at": zero_at},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=2, width=4.2) as (fig, (a, b)):
        a.semilogy(c["step"], c["nc1"], color="tab:blue")
        b.plot(c["step"], c["etf_cosine_deviation"], label="|cos + 1/(C-1)|")
        b.plot(c["step"], c["norm_spread"], label="class-mean norm spread")
        for ax in (a, b):
            if c["zero_at"] is not None:
                ax.axvline(c["zero_at"], color="k", ls="--", lw=1)
            ax.set_xlabel("training step")
        a.set_ylabel("NC1 = tr(S_W S_B^+)/C"), b.set_ylabel("distance from a simplex ETF"), b.legend(fontsize=7)
