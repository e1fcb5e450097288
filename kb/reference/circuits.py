"""Circuit analysis as a composition (patch every component, keep the important ones, check by ablation); causal scrubbing."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ._common import capture_outputs, forward_hooks, patch_output, replace_output, resolve_module
from .patching import activation_patching

__all__ = ["Component", "CircuitResult", "circuit_analysis", "ScrubResult", "causal_scrubbing"]

Component = tuple  # (module or dotted name, index into its output or None)


@dataclasses.dataclass
class CircuitResult:
    """``effects[i]``: normalised patching effect of component ``i`` (0 = no effect, 1 = restores the clean metric);
    ``circuit``: the components with ``effect >= threshold``; ``clean``/``corrupted``: baseline metrics;
    ``faithfulness``: metric with everything *outside* the circuit mean-ablated, normalised the same way;
    ``ablated``: metric with the circuit itself mean-ablated, normalised."""

    effects: Tensor
    circuit: list
    clean: float
    corrupted: float
    faithfulness: float
    ablated: float


def _mean_ablate(model, components, inputs):
    """Forward hooks replacing each component's output (or its indexed part) with its batch mean."""
    modules = [resolve_module(model, m) for m, _ in components]
    with torch.no_grad(), capture_outputs(modules, detach=True) as store:
        model(inputs)
    hooks = []
    for (module, (_, index)), acts in zip(zip(modules, components), store):
        mean = acts[-1].mean(0, keepdim=True)

        def fn(out, mean=mean, index=index):
            out = out.clone()
            if index is None:
                return mean.expand_as(out).clone()
            out[index] = mean.expand_as(out)[index]
            return out

        hooks.append((module, replace_output(fn)))
    return hooks


def circuit_analysis(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    components: Sequence[Component],
    metric: Callable[[Tensor], Tensor | float],
    threshold: float = 0.1,
) -> CircuitResult:
    """Find and test a circuit: activation patching per component, then ablation of the found subgraph.

    1. *Localise*: patch each ``(module, index)`` component from the clean into the corrupted run
       (:func:`~kb.reference.patching.activation_patching`) and normalise its effect as
       ``(m_patched - m_corrupted) / (m_clean - m_corrupted)``.
    2. *Select*: the circuit is every component with effect ``>= threshold``.
    3. *Verify*: on the clean input, mean-ablate all components outside the circuit
       (faithfulness: the metric should stay near clean, normalised near 1) and, separately, the
       circuit itself (necessity: the normalised metric should fall towards 0).

    References
    ----------
    [@wang2023interpretability]; [@olsson2022context]
    """
    with torch.no_grad():
        m_clean, m_corrupt = float(metric(model(clean))), float(metric(model(corrupted)))
    span = m_clean - m_corrupt if m_clean != m_corrupt else 1.0
    norm = lambda m: (m - m_corrupt) / span  # noqa: E731
    effects = torch.tensor([norm(activation_patching(model, clean, corrupted, module, metric, index))
                            for module, index in components])
    circuit = [c for c, e in zip(components, effects) if e >= threshold]
    outside = [c for c, e in zip(components, effects) if e < threshold]
    results = []
    for ablate in (outside, circuit):
        with torch.no_grad(), forward_hooks(_mean_ablate(model, ablate, clean) if ablate else []):
            results.append(norm(float(metric(model(clean)))))
    return CircuitResult(effects, circuit, m_clean, m_corrupt, results[0], results[1])


@dataclasses.dataclass
class ScrubResult:
    """``fraction``: ``(scrubbed - random) / (clean - random)`` of the metric; ``clean``: unscrubbed;
    ``scrubbed``: with the hypothesis' resampling, mean over draws; ``random``: every listed
    component resampled from unconstrained random inputs; ``draws``: the scrubbed metric per draw."""

    fraction: float
    clean: float
    scrubbed: float
    random: float
    draws: list


def _resample(keys: Tensor | None, n: int, g: torch.Generator) -> Tensor:
    """For each row ``i`` a random row ``j`` with ``keys[j] == keys[i]`` (any row when ``keys`` is None)."""
    if keys is None:
        return torch.randint(0, n, (n,), generator=g)
    keys = torch.as_tensor(keys)
    out = torch.empty(n, dtype=torch.long)
    for value in keys.unique():
        rows = (keys == value).nonzero().view(-1)
        out[rows] = rows[torch.randint(0, len(rows), (len(rows),), generator=g)]
    return out


def causal_scrubbing(
    model: nn.Module,
    inputs: Tensor,
    metric: Callable[[Tensor], Tensor | float],
    unimportant: Sequence[Component] = (),
    claims: Sequence[tuple] = (),
    n_draws: int = 4,
    seed: int = 0,
) -> ScrubResult:
    """Test a hypothesis by resampling ablation: how much of the metric survives the resampling it allows?

    ``unimportant``: ``(module, index)`` components the hypothesis says do not matter; each gets its
    value on an unconstrained random other input of the batch. ``claims``: ``(module, index, keys)``
    components the hypothesis says compute a variable whose value on each input is ``keys`` ``(B,)``;
    each gets its value on a random input with the same key. All replacements happen in one run;
    the score is ``(m_scrubbed - m_random) / (m_clean - m_random)``, ``m_random`` with every listed
    component resampled freely. A component's value on another input is its value in the clean run
    of that input (the input's whole upstream computation). This is node-level scrubbing: the
    paper's treeified version also resamples the inputs *into* a claimed node path by path.

    References
    ----------
    [@chan2022causal]; [@geiger2021causal]
    """
    comps = [(m, i, None) for m, i in unimportant] + [tuple(c) for c in claims]
    modules = [resolve_module(model, m) for m, _, _ in comps]
    n = inputs.shape[0]
    with torch.no_grad(), capture_outputs(modules, detach=True) as store:
        clean = float(metric(model(inputs)))
    values = [s[-1] for s in store]
    g = torch.Generator().manual_seed(seed)

    def run(perms: list[Tensor]) -> float:
        hooks = [(mod, replace_output(patch_output(v[p], idx))) for mod, v, p, (_, idx, _) in zip(modules, values, perms, comps)]
        with torch.no_grad(), forward_hooks(hooks):
            return float(metric(model(inputs)))

    draws, randoms = [], []
    for _ in range(n_draws):
        draws.append(run([_resample(keys, n, g) for _, _, keys in comps]))
        randoms.append(run([_resample(None, n, g) for _ in comps]))
    scrubbed, random = sum(draws) / n_draws, sum(randoms) / n_draws
    span = clean - random
    return ScrubResult((scrubbed - random) / span if span else float("nan"), clean, scrubbed, random, draws)
