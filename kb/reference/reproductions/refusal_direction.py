"""A single difference-of-means direction mediates a behaviour [@arditi2024refusal], in a toy transformer.

A small transformer is trained to answer a ``REFUSE`` token whenever its input holds one of a few
"harmful" tokens, and otherwise to copy the first token (its "task"). As in Arditi et al., the
candidate direction is the difference between the mean residual stream on harmful and harmless
prompts at the last position (``kb.reference.editing.steering_vector``); directional ablation
projects it out of every layer's output at every position, activation addition adds it
(``kb.reference.editing.add_steering``). A random direction of the same norm is the control.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .._common import forward_hooks, generator, replace_output
from ..editing import add_steering, steering_vector
from ..models import AttentionOnlyTransformer, _fit
from ._base import new_figure, result

__all__ = ["CLAIM", "QUICK", "make_prompts", "directional_ablation", "run", "figure"]

CLAIM = """Refusal is mediated by one direction in the residual stream, the difference of mean activations
on harmful and harmless prompts: projecting it out of every layer stops the refusals, adding it makes
the model refuse harmless prompts, and a random direction does neither (Arditi et al. 2024)."""

QUICK = {"n_steps": 300}

VOCAB, LENGTH, REFUSE, N_HARMFUL = 32, 8, 31, 4  # tokens 0-3 are "harmful", 31 is the refusal
COEFFICIENTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def make_prompts(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens (n, LENGTH), answer (n,), harmful (n,) bool)``; half the prompts hold one harmful token."""
    g = generator(seed)
    tokens = torch.randint(N_HARMFUL, REFUSE, (n, LENGTH), generator=g)
    harmful = torch.rand(n, generator=g) < 0.5
    where = torch.randint(0, LENGTH - 1, (n,), generator=g)
    which = torch.randint(0, N_HARMFUL, (n,), generator=g)
    tokens[harmful, where[harmful]] = which[harmful]
    return tokens, torch.where(harmful, REFUSE, tokens[:, 0]), harmful


def directional_ablation(model, layers, direction: torch.Tensor):
    """Context manager: every module in ``layers`` outputs ``h - (h . r) r`` with ``r`` the unit ``direction``."""
    r = direction / direction.norm()
    project = replace_output(lambda h: h - (h @ r)[..., None] * r)
    return forward_hooks([(model.get_submodule(name), project) for name in layers])


def _rate(model, tokens, answer) -> float:
    with torch.no_grad():
        return float((model(tokens)[:, -1].argmax(-1) == answer).float().mean())


def run(seed: int = 0, n_steps: int = 400, layer: str = "blocks.0") -> dict:
    """Train the toy, take the direction at ``layer`` (the middle of the residual stream), ablate and add it."""
    model = AttentionOnlyTransformer(vocab=VOCAB, n_layers=2, seed=seed)
    _fit(model, lambda s: make_prompts(128, seed * 100003 + s)[:2], n_steps, 3e-3, seed,
         loss_fn=lambda out, y: F.cross_entropy(out[:, -1], y))
    tokens, answer, harmful = make_prompts(1000, seed + 999)
    bad, good = tokens[harmful], tokens[~harmful]
    refuse_bad, refuse_good = torch.full((len(bad),), REFUSE), torch.full((len(good),), REFUSE)
    direction = steering_vector(model, bad, good, layer, position=-1)
    control = torch.randn(direction.shape, generator=generator(seed + 7))
    control = control * direction.norm() / control.norm()
    everywhere = ["embed", "blocks.0", "blocks.1"]
    measured = {"refusal_harmful": _rate(model, bad, refuse_bad), "refusal_harmless": _rate(model, good, refuse_good),
                "task_accuracy_harmless": _rate(model, good, answer[~harmful])}
    sweep: dict[str, list[float]] = {}
    for name, vec in (("", direction), ("random_", control)):
        with directional_ablation(model, everywhere, vec):
            measured[f"{name}ablated_refusal_harmful"] = _rate(model, bad, refuse_bad)
            measured[f"{name}ablated_task_accuracy_harmless"] = _rate(model, good, answer[~harmful])
        for c in COEFFICIENTS:
            with add_steering(model, layer, vec, c):
                sweep.setdefault(name or "refusal", []).append(_rate(model, good, refuse_good))
        measured[f"{name}added_refusal_harmless"] = sweep[name or "refusal"][COEFFICIENTS.index(1.0)]
        measured[f"{name}added_refusal_harmless_c2"] = sweep[name or "refusal"][COEFFICIENTS.index(2.0)]
    m = measured
    passed = (m["refusal_harmful"] >= 0.95 and m["refusal_harmless"] <= 0.05 and m["ablated_refusal_harmful"] <= 0.2
              and m["ablated_task_accuracy_harmless"] >= 0.9 and m["added_refusal_harmless"] >= 0.25
              and m["added_refusal_harmless_c2"] >= 0.7 and m["random_ablated_refusal_harmful"] >= 0.9
              and m["random_added_refusal_harmless_c2"] <= 0.1)
    return result(
        CLAIM,
        f"A two-layer attention-only transformer (d_model 32) trained {n_steps} Adam steps to answer REFUSE when "
        f"one of {N_HARMFUL} 'harmful' tokens appears in its {LENGTH}-token prompt and to copy the first token "
        f"otherwise; the direction is the harmful-minus-harmless mean residual after {layer} at the last position; "
        "ablation projects it out of the embedding and both layers' outputs at every position; addition adds it "
        f"after {layer} at every position, times a coefficient (1 in the paper); 1000 held-out prompts.",
        measured, "ablated_refusal_harmful",
        "passes when the trained model refuses >= 95% of harmful and <= 5% of harmless prompts, ablation cuts "
        "refusal of harmful prompts to <= 20% while the harmless task stays >= 90% correct, addition makes it "
        "refuse >= 25% of harmless prompts at coefficient 1 and >= 70% at coefficient 2, and a random direction of "
        "the same norm leaves harmful refusal >= 90% and induces <= 10% even at coefficient 2",
        passed,
        {"conditions": ["baseline", "ablate refusal dir.", "ablate random dir."],
         "refusal_harmful": [m["refusal_harmful"], m["ablated_refusal_harmful"], m["random_ablated_refusal_harmful"]],
         "added": ["baseline", "add refusal dir.", "add random dir."],
         "refusal_harmless": [m["refusal_harmless"], m["added_refusal_harmless"], m["random_added_refusal_harmless"]],
         "coefficients": list(COEFFICIENTS), "sweep": sweep["refusal"], "sweep_random": sweep["random_"]},
    )


def figure(res: dict, path) -> None:
    c = res["curves"]
    with new_figure(path, ncols=2, width=3.8) as (fig, (a, b)):
        a.bar(c["conditions"], c["refusal_harmful"], color=["grey", "tab:red", "tab:blue"])
        a.set_title("harmful prompts: ablation", fontsize=9), a.set_ylabel("refusal rate")
        a.tick_params(axis="x", labelsize=7)
        b.plot(c["coefficients"], c["sweep"], marker="o", color="tab:red", label="refusal direction")
        b.plot(c["coefficients"], c["sweep_random"], marker="x", color="tab:blue", label="random direction")
        b.set_title("harmless prompts: addition", fontsize=9), b.set_xlabel("coefficient"), b.legend(fontsize=7)
        for ax in (a, b):
            ax.set_ylim(0, 1.05)
