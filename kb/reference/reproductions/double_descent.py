"""Double descent with random-features regression [@belkin2019reconciling; @nakkiran2020deep].

Fit ``y`` with ``p`` random ReLU features ``relu(x W)`` by minimum-norm least squares (the
pseudo-inverse; the interpolating solution of smallest norm once ``p >= n``). Test error follows
the classical U while ``p < n``, peaks where the model can first interpolate the ``n`` training
points (``p = n``), then falls again as ``p`` grows. The peak has a visible cause: at ``p = n`` the
square feature matrix is nearly singular, so the pseudo-inverse amplifies the label noise.
"""

from __future__ import annotations

import torch

from .._common import generator
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "random_features_curve", "run", "figure"]

CLAIM = """Test error as a function of model size peaks at the interpolation threshold, where the number
of parameters equals the number of training points, and falls again beyond it, below the best
under-parameterised error (double descent; Belkin et al. 2019, Nakkiran et al. 2020)."""

QUICK = {"n_draws": 3}

WIDTHS = (10, 20, 40, 60, 80, 90, 100, 110, 120, 150, 200, 400, 800, 1600, 3200)


def random_features_curve(x, y, x_test, y_test, widths, n_draws: int, seed: int) -> tuple[list[float], list[float]]:
    """Per width, the median over ``n_draws`` draws of ``W`` of the test MSE of min-norm least squares on
    ``relu(x W)``, and of the smallest singular value of the training feature matrix (``min(n, p)``-th)."""
    g = generator(seed + 1)
    curve, smallest = [], []
    for p in widths:
        errors, sv = [], []
        for _ in range(n_draws):
            W = torch.randn(x.shape[1], p, generator=g, dtype=torch.float64) / x.shape[1] ** 0.5
            features = torch.relu(x @ W)
            coef = torch.linalg.pinv(features) @ y
            errors.append(float((torch.relu(x_test @ W) @ coef - y_test).pow(2).mean()))
            sv.append(float(torch.linalg.svdvals(features)[-1]))
        curve.append(float(torch.tensor(errors).median()))
        smallest.append(float(torch.tensor(sv).median()))
    return curve, smallest


def run(seed: int = 0, n_train: int = 100, dim: int = 20, noise: float = 0.5, widths=WIDTHS, n_draws: int = 5) -> dict:
    """Sweep the number of random features through ``n_train``; locate the peak and the second descent."""
    g = generator(seed)
    beta = torch.randn(dim, generator=g, dtype=torch.float64) / dim ** 0.5

    def data(n):
        x = torch.randn(n, dim, generator=g, dtype=torch.float64)
        return x, torch.tanh(2 * x @ beta) + noise * torch.randn(n, generator=g, dtype=torch.float64)

    (x, y), (xt, yt) = data(n_train), data(2000)
    curve, smallest = random_features_curve(x, y, xt, yt, widths, n_draws, seed)
    trough = min(range(len(widths)), key=smallest.__getitem__)
    peak = max(range(len(widths)), key=curve.__getitem__)
    under = min(e for p, e in zip(widths, curve) if p < n_train)
    widest = curve[-1]
    passed = 0.8 * n_train <= widths[peak] <= 1.25 * n_train and curve[peak] >= 5 * under and widest < under
    return result(
        CLAIM,
        f"{n_train} training points y = tanh(2 x.beta) + N(0, {noise}^2) in {dim} dimensions; p random ReLU features "
        f"relu(x W), W Gaussian, fitted by minimum-norm least squares; test MSE on 2000 points, median of {n_draws} "
        f"draws of W for each p in {list(widths)}.",
        {"peak_width": widths[peak], "n_train": n_train, "peak_test_mse": curve[peak],
         "best_underparameterised_mse": under, "widest_test_mse": widest, "noise_variance": noise ** 2,
         "smallest_singular_value_trough_width": widths[trough]},
        "peak_width",
        f"passes when the peak lies within [0.8 n, 1.25 n] = [{0.8 * n_train:g}, {1.25 * n_train:g}], is at least "
        f"5 times the best under-parameterised error, and the widest model ({widths[-1]} features) beats that error",
        passed,
        {"width": list(widths), "test_mse": curve, "smallest_singular_value": smallest},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=2, width=4.2) as (fig, (ax, bx)):
        ax.loglog(c["width"], c["test_mse"], marker="o")
        ax.axhline(res["measured"]["best_underparameterised_mse"], color="tab:green", ls=":", lw=1,
                   label="best with p < n")
        ax.set_ylabel("test MSE")
        bx.loglog(c["width"], c["smallest_singular_value"], marker="o", color="tab:purple")
        bx.set_ylabel("smallest singular value of the features")
        for a in (ax, bx):
            a.axvline(res["measured"]["n_train"], color="k", ls="--", lw=1, label="p = n (interpolation threshold)")
            a.set_xlabel("random features p"), a.legend(fontsize=7)
