"""Sanity checks for saliency maps: cascading model randomisation [@adebayo2018sanity].

Randomise a trained CNN's weight layers one at a time from the logits down, and after each step
compare every method's map with the trained model's (Spearman rank correlation of absolute values,
averaged over images). A method that explains the model must change; Adebayo et al. found that
plain gradients do while guided backpropagation [@springenberg2015striving] barely moves.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .. import attribution
from ..models import _fit, make_shapes, train_shapes_cnn
from ..similarity import spearman
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "deep_shapes_cnn", "cascading_randomization", "run", "figure"]

CLAIM = """Under cascading randomisation of a trained CNN's layers, from the logits down, plain gradient
maps change sharply while guided-backpropagation maps stay close to the trained model's: guided
backprop fails the model-randomisation test (Adebayo et al. 2018)."""

QUICK = {"n_steps": 100, "n_images": 32, "demo_cnn": False}

METHODS = {
    "gradient": lambda m, x, y: attribution.saliency(m, x, y),
    "guided backprop": lambda m, x, y: attribution.guided_backprop(m, x, y).abs(),
}


def deep_shapes_cnn(channels: int = 16, seed: int = 0) -> nn.Sequential:
    """Five 3x3 conv layers (two poolings) and a linear readout for the 16x16 shapes task."""
    c = channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32 * c, 3))


def cascading_randomization(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor, seed: int = 0) -> dict:
    """``{method: [rank correlation after randomising the top 1, 2, ... weight layers]}``."""
    def maps(m):
        return {k: f(m, inputs, target).flatten(1) for k, f in METHODS.items()}

    base = maps(model)
    layers = [mod for mod in model.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))][::-1]
    randomised = copy.deepcopy(model)
    layers = [mod for mod in randomised.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))][::-1]
    out = {k: [] for k in METHODS}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for layer in layers:
            layer.reset_parameters()  # the layer's own default initialisation
            new = maps(randomised)
            for k in METHODS:
                out[k].append(sum(spearman(a, b) for a, b in zip(base[k], new[k])) / len(inputs))
    return out


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run(seed: int = 0, channels: int = 16, n_steps: int = 200, n_images: int = 64, demo_cnn: bool = True) -> dict:
    """Train the deep CNN on the shapes task, randomise it layer by layer, compare maps; optionally the demo CNN too."""
    x, y = make_shapes(2048, seed=seed)
    model = deep_shapes_cnn(channels, seed)
    _fit(model, lambda s: (x[(s * 128) % 2048:][:128], y[(s * 128) % 2048:][:128]), n_steps, 3e-3, seed)
    xt, yt = make_shapes(n_images, seed=seed + 1)
    acc = _accuracy(model, xt, yt)
    deep = cascading_randomization(model, xt, yt, seed)
    half = len(deep["gradient"]) // 2  # after randomising the top half of the weight layers
    gbp_top, grad_top = deep["guided backprop"][0], deep["gradient"][0]
    gbp_half, grad_half = deep["guided backprop"][half - 1], deep["gradient"][half - 1]
    measured = {"test_accuracy": acc, "gbp_after_logits": gbp_top, "gradient_after_logits": grad_top,
                "gbp_after_top_half": gbp_half, "gradient_after_top_half": grad_half,
                "gap_after_top_half": gbp_half - grad_half}
    curves = {"deep": deep}
    if demo_cnn:  # the three-layer demo CNN, where the finding does not show (reported, not tested)
        demo = train_shapes_cnn(seed)
        shallow = cascading_randomization(demo.model, xt, yt, seed)
        measured |= {"demo_cnn_gbp_after_logits": shallow["guided backprop"][0],
                     "demo_cnn_gradient_after_logits": shallow["gradient"][0]}
        curves["demo"] = shallow
    passed = acc >= 0.9 and gbp_half >= 0.7 and grad_half <= 0.55 and gbp_half - grad_half >= 0.25
    return result(
        CLAIM,
        f"A CNN with five conv layers ({channels}-{2 * channels} channels) trained on the 16x16 shapes task "
        f"({n_steps} Adam steps); its six weight layers re-initialised one at a time from the logits down; Spearman "
        f"correlation of |map| with the trained model's, mean over {n_images} test images.",
        measured, "gap_after_top_half",
        f"passes when, after randomising the top {half} of {len(deep['gradient'])} weight layers, guided backprop "
        "keeps a rank correlation of at least 0.7, the gradient's is at most 0.55, and the gap is at least 0.25 "
        "(test accuracy of the trained CNN at least 0.9)",
        passed, curves)


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, width=5.5) as (fig, ax):
        for name, colour in (("gradient", "tab:red"), ("guided backprop", "tab:blue")):
            steps = range(1, len(c["deep"][name]) + 1)
            ax.plot(steps, c["deep"][name], marker="o", color=colour, label=f"{name} (5-conv CNN)")
            if "demo" in c:
                ax.plot(range(1, len(c["demo"][name]) + 1), c["demo"][name], ls=":", marker="x", color=colour,
                        label=f"{name} (3-layer demo CNN)")
        ax.set_xlabel("weight layers randomised, from the logits down"), ax.set_ylabel("rank correlation with trained")
        ax.set_ylim(-0.1, 1.05), ax.legend(fontsize=7)
