"""Minimum-description-length probing: the online codelength of labels given representations."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from ._common import generator
from .probes import train_linear_probe

__all__ = ["MDLResult", "mdl_probe"]

# Voita & Titov's block boundaries: 0.1%, 0.2%, 0.4%, 0.8%, 1.6%, 3.2%, 6.25%, 12.5%, 25%, 50%, 100%
VOITA_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)


@dataclasses.dataclass
class MDLResult:
    """Codelengths in bits: ``online`` (total), ``uniform`` (``n log2 K``), ``compression`` = uniform / online,
    ``blocks`` the codelength of each block (the first under the uniform code), ``cuts`` the block ends."""

    online: float
    uniform: float
    compression: float
    blocks: list
    cuts: list



def mdl_probe(
    features: Tensor,
    labels: Tensor,
    fractions: Sequence[float] = VOITA_FRACTIONS,
    n_classes: int | None = None,
    l2: float = 1e-2,
    n_iter: int = 100,
    seed: int = 0,
) -> MDLResult:
    """Online (prequential) code: transmit the labels block by block, each with a probe trained on the blocks before.

    After shuffling (``seed``), the data is cut at ``t_i = fractions[i] * n``. The first block is sent
    with the uniform code (``t_1 log2 K`` bits); block ``(t_i, t_{i+1}]`` costs
    ``sum -log2 p_i(y | x)`` under a linear probe trained on the first ``t_i`` examples. The online
    codelength is their sum; ``compression = n log2 K / online``. Representations that make the
    labels easy to learn from few examples compress well; random labels give ``compression`` near
    1 (a little below when the probe overfits early blocks), whatever the probe's capacity.

    Parameters
    ----------
    features : ``(n, d)`` representations.
    labels : ``(n,)`` class indices.

    References
    ----------
    [@voita2020informationtheoretic]
    """
    n = len(labels)
    k = n_classes or int(labels.max()) + 1
    perm = torch.randperm(n, generator=generator(seed))
    x, y = features.detach().float()[perm], labels[perm]
    cuts = sorted({max(1, min(n, round(f * n))) for f in fractions} | {n})
    blocks = [cuts[0] * math.log2(k)]
    for start, end in zip(cuts[:-1], cuts[1:]):
        probe = train_linear_probe(x[:start], y[:start], l2, n_iter, n_classes=k)
        with torch.no_grad():
            nats = F.cross_entropy(probe(x[start:end]), y[start:end], reduction="sum")
        blocks.append(float(nats) / math.log(2))
    online, uniform = sum(blocks), n * math.log2(k)
    return MDLResult(online, uniform, uniform / online, blocks, cuts)
