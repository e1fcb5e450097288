"""Reading the residual stream with the unembedding: logit lens, tuned lens, direct logit attribution, Patchscopes."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import capture_outputs, forward_hooks, replace_output, resolve_module

__all__ = ["logit_lens", "TunedLens", "tuned_lens", "LogitAttribution", "direct_logit_attribution", "patchscope"]


def _residuals(model: nn.Module, inputs: Tensor, layers: Sequence[nn.Module | str]) -> tuple[list[Tensor], Tensor]:
    modules = [resolve_module(model, layer) for layer in layers]
    with torch.no_grad(), capture_outputs(modules, detach=True) as store:
        out = model(inputs)
    return [s[-1] for s in store], out


def logit_lens(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str],
    unembed: Callable[[Tensor], Tensor],
) -> Tensor:
    """Decode every layer's residual stream with the model's own unembedding.

    ``logits_l = unembed(h_l)`` for the output ``h_l`` of each of ``layers`` (the residual stream
    after that block, ``(B, T, D)``); ``unembed`` includes the final normalisation if the model
    has one.

    Returns
    -------
    Tensor ``(L, B, T, V)``.

    References
    ----------
    [@nostalgebraist2020logit]
    """
    hidden, _ = _residuals(model, inputs, layers)
    with torch.no_grad():
        return torch.stack([unembed(h) for h in hidden])


@dataclasses.dataclass
class TunedLens:
    """Per-layer affine translators ``h -> h + A h + b`` and the lens logits ``(L, B, T, V)`` on the inputs."""

    translators: nn.ModuleList
    logits: Tensor
    kl: Tensor  # (L,) KL(final || lens) after training


def tuned_lens(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str],
    unembed: Callable[[Tensor], Tensor],
    n_steps: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
) -> TunedLens:
    """Tuned lens: train one affine translator per layer so ``unembed(translator(h_l))`` matches the final logits.

    Each translator starts at the identity (so it starts as the logit lens) and minimises
    ``KL(softmax(final) || softmax(unembed(h_l + A_l h_l + b_l)))`` over ``inputs``.

    References
    ----------
    [@belrose2023eliciting]
    """
    hidden, final = _residuals(model, inputs, layers)
    target = F.log_softmax(final, -1).reshape(-1, final.shape[-1])
    d = hidden[0].shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        translators = nn.ModuleList(nn.Linear(d, d) for _ in hidden)
    for tr in translators:  # identity start: the residual form h + A h + b with A = b = 0
        nn.init.zeros_(tr.weight), nn.init.zeros_(tr.bias)
    opt = torch.optim.Adam(translators.parameters(), lr=lr)

    def lens_logp(tr, h):
        return F.log_softmax(unembed(h + tr(h)), -1).reshape(-1, target.shape[-1])

    frozen = [p for p in model.parameters() if p.requires_grad]
    try:  # the model's own weights (the unembedding) must not collect gradients
        for p in frozen:
            p.requires_grad_(False)
        for _ in range(n_steps):
            loss = sum(F.kl_div(lens_logp(tr, h), target, log_target=True, reduction="batchmean")
                       for tr, h in zip(translators, hidden))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    with torch.no_grad():
        logits = torch.stack([unembed(h + tr(h)) for tr, h in zip(translators, hidden)])
        kl = torch.stack([F.kl_div(lens_logp(tr, h), target, log_target=True, reduction="batchmean")
                          for tr, h in zip(translators, hidden)])
    return TunedLens(translators.requires_grad_(False), logits, kl)


@dataclasses.dataclass
class LogitAttribution:
    """``contributions[c]`` ``(B,)``: component ``c``'s direct effect on the logit (difference); ``labels[c]`` names it.

    The last two rows are ``"other"`` (what the listed components leave of the final residual
    stream: biases, unlisted modules) and ``"constant"`` (the norm's bias and the unembedding bias),
    so ``contributions.sum(0) == logit_diff`` exactly.
    """

    labels: list[str]
    contributions: Tensor
    logit_diff: Tensor


def direct_logit_attribution(
    model: nn.Module,
    inputs: Tensor,
    target: int | Tensor,
    components: Sequence[nn.Module | str],
    resid: nn.Module | str,
    unembed: nn.Linear,
    baseline: int | Tensor | None = None,
    position: int = -1,
    norm: nn.Module | None = None,
) -> LogitAttribution:
    """Split the logit of ``target`` (minus that of ``baseline``) at ``position`` into the components' direct effects.

    The final residual stream (``resid``'s output) is the sum of the ``components``' outputs (a
    ``(B, T, D)`` output is one component; a ``(B, T, H, D)`` output, such as per-head results, is
    ``H``) and a remainder. With the final LayerNorm's scale ``sigma`` taken from this forward pass
    and then held fixed, ``norm`` is linear: component ``c`` contributes
    ``gamma * (o_c - mean(o_c)) / sigma . (u_target - u_baseline)`` (``u`` rows of the unembedding).
    Without ``norm`` it is ``o_c . (u_target - u_baseline)``.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
    >>> dla = direct_logit_attribution(net, torch.randn(2, 3), 1, ["0"], "0", net[1], baseline=0)
    >>> bool(torch.allclose(dla.contributions.sum(0), dla.logit_diff))
    True

    References
    ----------
    [@elhage2021mathematical]; [@nostalgebraist2020logit]
    """
    mods = [resolve_module(model, c) for c in components]
    with torch.no_grad(), capture_outputs([*mods, resolve_module(model, resid)], detach=True) as store:
        out = model(inputs)
    pick = lambda a: a[:, position] if a.ndim > 2 else a  # noqa: E731  (B, [H,] D) at the position
    outs, labels = [], []
    for comp, s in zip(components, store[:-1]):
        o = pick(s[-1])
        name = comp if isinstance(comp, str) else type(comp).__name__
        if o.ndim == 3:
            outs += list(o.unbind(1))
            labels += [f"{name}[{h}]" for h in range(o.shape[1])]
        else:
            outs.append(o)
            labels.append(name)
    x = pick(store[-1][-1])
    outs.append(x - sum(outs))
    labels.append("other")
    n = x.shape[0]
    tgt = torch.as_tensor(target).expand(n)
    direction = unembed.weight[tgt]  # (B, D)
    bias = unembed.bias[tgt] if unembed.bias is not None else torch.zeros(n)
    if baseline is not None:
        base = torch.as_tensor(baseline).expand(n)
        direction = direction - unembed.weight[base]
        bias = bias - (unembed.bias[base] if unembed.bias is not None else 0)
    with torch.no_grad():
        if norm is not None:
            centred = x - x.mean(-1, keepdim=True)
            sigma = (centred.pow(2).mean(-1, keepdim=True) + norm.eps).sqrt()
            linear = lambda o: (o - o.mean(-1, keepdim=True)) / sigma * norm.weight  # noqa: E731
            bias = bias + (norm.bias * direction).sum(-1)
        else:
            linear = lambda o: o  # noqa: E731
        contributions = torch.stack([(linear(o) * direction).sum(-1) for o in outs] + [bias])
        logits = out[:, position] if out.ndim == 3 else out
        diff = logits[torch.arange(n), tgt] - (logits[torch.arange(n), base] if baseline is not None else 0)
    return LogitAttribution(labels + ["constant"], contributions, diff)


def patchscope(
    model: nn.Module,
    source: Tensor,
    source_layer: nn.Module | str,
    source_position: int,
    target: Tensor,
    target_layer: nn.Module | str,
    target_position: int,
    mapping: Callable[[Tensor], Tensor] | None = None,
    target_model: nn.Module | None = None,
    read_position: int | None = None,
) -> Tensor:
    """Patch a hidden state of the source prompt into a target prompt and read what the model outputs there.

    ``h = source_layer(source)[:, source_position]`` ``(B, D)``; the target run (``target_model``,
    default the same model, on ``target`` ``(B, T')`` or ``(1, T')``) has ``target_layer``'s output at
    ``target_position`` replaced by ``mapping(h)`` (identity by default). Returns the target run's
    output at ``read_position`` (default ``target_position``), ``(B, V)``: a later position reads what
    the model does with the patched state downstream, as a generation would. Patching into the
    *last* layer with the identity map and reading there is the logit lens: the result does not
    depend on the target prompt.

    References
    ----------
    [@ghandeharioun2024patchscopes]; [@chen2024selfie]
    """
    target_model = model if target_model is None else target_model
    with torch.no_grad(), capture_outputs([resolve_module(model, source_layer)], detach=True) as store:
        model(source)
    h = store[0][-1][:, source_position]
    h = h if mapping is None else mapping(h)
    target = target.expand(h.shape[0], -1) if target.shape[0] == 1 else target

    def patch(out: Tensor) -> Tensor:
        out = out.clone()
        out[:, target_position] = h
        return out

    with torch.no_grad(), forward_hooks([(resolve_module(target_model, target_layer), replace_output(patch))]):
        return target_model(target)[:, target_position if read_position is None else read_position]
