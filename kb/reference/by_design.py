"""Interpretable-by-design models: concept bottleneck models, ProtoPNet, neural additive models."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._common import generator

__all__ = ["ConceptBottleneckModel", "train_cbm", "intervene", "ProtoPNet", "PushResult", "push_prototypes",
           "train_protopnet", "NeuralAdditiveModel", "train_nam"]


def _batches(n: int, batch_size: int | None, n_steps: int, seed: int):
    """Row indices for ``n_steps`` steps: full batch, or shuffled mini-batches from a seeded generator."""
    g = generator(seed)
    order = torch.randperm(n, generator=g)
    for step in range(n_steps):
        if batch_size is None or batch_size >= n:
            yield slice(None)
            continue
        start = (step * batch_size) % n
        if start + batch_size > n:
            order = torch.randperm(n, generator=g)
            start = 0
        yield order[start:start + batch_size]


def _adam(params, loss_at, n: int, n_steps: int, lr: float, batch_size: int | None, seed: int) -> float:
    """Adam on ``loss_at(rows)`` over seeded mini-batches; returns the last loss."""
    opt = torch.optim.Adam(params, lr=lr)
    loss = torch.tensor(float("nan"))
    for rows in _batches(n, batch_size, n_steps, seed):
        loss = loss_at(rows)
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


# --- concept bottleneck models ------------------------------------------------------------------------

class ConceptBottleneckModel(nn.Module):
    """``y = head(sigmoid(concept_net(x)))``: the label sees the input only through ``k`` concept probabilities.

    ``concept_net`` is any module mapping inputs to ``(N, k)`` concept logits; ``head`` is linear,
    so ``head.weight[c, j]`` reads as how much concept ``j`` moves class ``c``.
    """

    def __init__(self, concept_net: nn.Module, n_concepts: int, n_classes: int, seed: int = 0):
        super().__init__()
        self.concept_net = concept_net
        self.head = torch.nn.Linear(n_concepts, n_classes)
        with torch.no_grad():  # seeded, without touching the global generator
            bound = 1 / math.sqrt(n_concepts)
            g = generator(seed)
            self.head.weight.copy_(torch.rand(self.head.weight.shape, generator=g) * 2 * bound - bound)
            self.head.bias.copy_(torch.rand(self.head.bias.shape, generator=g) * 2 * bound - bound)

    def concepts(self, x: Tensor) -> Tensor:
        """``(N, k)`` predicted concept probabilities."""
        return torch.sigmoid(self.concept_net(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.concepts(x))


def train_cbm(
    concept_net: nn.Module,
    inputs: Tensor,
    concepts: Tensor,
    labels: Tensor,
    n_classes: int,
    mode: str = "independent",
    concept_weight: float = 1.0,
    n_steps: int = 300,
    head_steps: int = 300,
    lr: float = 1e-2,
    batch_size: int | None = None,
    seed: int = 0,
) -> ConceptBottleneckModel:
    """Train a concept bottleneck model ``f(g(x))`` the three ways Koh et al. compare.

    ``g`` = ``concept_net`` (trained in place) maps inputs to ``k`` concept logits; ``f`` is a
    linear head on the concept probabilities ``c_hat = sigmoid(g(x))``.

    - ``"independent"``: ``g`` minimises the concept loss ``L_C = BCE(g(x), c)``; ``f`` minimises
      ``CE(f(c), y)`` on the *true* concepts ``c``; at test time ``f`` gets ``c_hat``.
    - ``"sequential"``: ``g`` as above, then ``f`` on ``CE(f(c_hat), y)`` with ``g`` frozen.
    - ``"joint"``: ``g`` and ``f`` together on ``CE(f(c_hat), y) + concept_weight * L_C``.

    The independent head never sees soft concept probabilities in training, which limits (it does
    not remove) leakage of label information through them; a test-time intervention
    (:func:`intervene`) hands it exactly what it was trained on.

    Parameters
    ----------
    inputs : ``(N, ...)``; concepts : ``(N, k)`` 0/1 annotations; labels : ``(N,)`` class indices.

    References
    ----------
    [@koh2020concept]
    """
    if mode not in ("independent", "sequential", "joint"):
        raise ValueError(f"mode must be independent, sequential or joint, got {mode!r}")
    model = ConceptBottleneckModel(concept_net, concepts.shape[1], n_classes, seed)
    c, n = concepts.float(), len(inputs)
    concept_loss = lambda r: F.binary_cross_entropy_with_logits(concept_net(inputs[r]), c[r])  # noqa: E731
    model.train()
    if mode == "joint":
        joint_loss = lambda r: F.cross_entropy(model(inputs[r]), labels[r]) + concept_weight * concept_loss(r)  # noqa: E731
        _adam(model.parameters(), joint_loss, n, n_steps, lr, batch_size, seed)
    else:
        _adam(concept_net.parameters(), concept_loss, n, n_steps, lr, batch_size, seed)
        concept_net.eval()
        with torch.no_grad():
            head_inputs = c if mode == "independent" else model.concepts(inputs)
        _adam(model.head.parameters(), lambda r: F.cross_entropy(model.head(head_inputs[r]), labels[r]),
              n, head_steps, lr, batch_size, seed + 1)
    return model.eval()


def intervene(model: ConceptBottleneckModel, inputs: Tensor, mask: Tensor, values: Tensor) -> Tensor:
    """Test-time intervention: the logits after replacing the masked concept probabilities by ``values``.

    ``mask`` ``(N, k)`` or ``(k,)`` bool: which concepts an expert corrects; ``values`` the corrected
    0/1 concepts (only the masked entries are used).
    """
    with torch.no_grad():
        c = model.concepts(inputs)
        return model.head(torch.where(mask.bool(), values.to(c.dtype), c))


# --- ProtoPNet ----------------------------------------------------------------------------------------------

class ProtoPNet(nn.Module):
    """``features`` (a CNN) -> 1x1 add-on layers with a sigmoid -> the squared L2 distance of every latent
    patch to every prototype -> per prototype the smallest distance ``d``, similarity
    ``log((d + 1) / (d + eps))`` -> a linear layer from prototypes to classes.

    ``prototype_class[p]`` is the class prototype ``p`` belongs to; the last layer starts at
    ``+1`` for a prototype's own class and ``-0.5`` for the others.
    """

    def __init__(self, features: nn.Module, feature_channels: int, n_classes: int, per_class: int = 2,
                 proto_dim: int = 16, eps: float = 1e-4, seed: int = 0):
        super().__init__()
        self.features, self.eps = features, eps
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.add_on = nn.Sequential(nn.Conv2d(feature_channels, proto_dim, 1), nn.ReLU(),
                                        nn.Conv2d(proto_dim, proto_dim, 1), nn.Sigmoid())
            self.prototypes = nn.Parameter(torch.rand(n_classes * per_class, proto_dim))
        self.register_buffer("prototype_class", torch.arange(n_classes).repeat_interleave(per_class))
        own = F.one_hot(self.prototype_class, n_classes).float().T  # (classes, prototypes)
        self.last = nn.Linear(n_classes * per_class, n_classes, bias=False)
        with torch.no_grad():
            self.last.weight.copy_(own - 0.5 * (1 - own))

    def latent(self, x: Tensor) -> Tensor:
        """``(N, D, H, W)`` latent patches."""
        return self.add_on(self.features(x))

    def distances(self, x: Tensor) -> Tensor:
        """``(N, P, H, W)`` squared L2 distance of each latent patch to each prototype."""
        z = self.latent(x)
        p = self.prototypes
        return ((z ** 2).sum(1, keepdim=True) - 2 * torch.einsum("ndhw,pd->nphw", z, p)
                + (p ** 2).sum(1).view(1, -1, 1, 1)).clamp(min=0)

    def similarities(self, x: Tensor) -> Tensor:
        """``(N, P)``: ``log((d_min + 1) / (d_min + eps))`` of each prototype's closest patch."""
        d = self.distances(x).flatten(2).min(-1).values
        return torch.log((d + 1) / (d + self.eps))

    def forward(self, x: Tensor) -> Tensor:
        return self.last(self.similarities(x))


@dataclasses.dataclass
class PushResult:
    """For each prototype: the training ``image`` it was projected onto, the latent ``location`` ``(h, w)``
    of that patch, and its distance before the push."""

    image: Tensor
    location: Tensor
    distance: Tensor


def push_prototypes(model: ProtoPNet, inputs: Tensor, labels: Tensor) -> PushResult:
    """Project every prototype onto its nearest latent patch among training images of its own class.

    After the push each prototype *is* a patch of a real training image, which is what lets
    ProtoPNet show "this looks like that": the image region under the patch.
    """
    with torch.no_grad():
        z = model.latent(inputs)  # (N, D, H, W)
        n, dim, h, w = z.shape
        d = model.distances(inputs).flatten(2)  # (N, P, H*W)
        own = labels.view(-1, 1) == model.prototype_class.view(1, -1)  # (N, P)
        d = torch.where(own[..., None], d, torch.inf)
        best = d.permute(1, 0, 2).reshape(len(model.prototypes), -1).min(1)  # over images and positions
        image, pos = best.indices // (h * w), best.indices % (h * w)
        model.prototypes.copy_(z.flatten(2)[image, :, pos])
    return PushResult(image, torch.stack([pos // w, pos % w], 1), best.values)


def train_protopnet(
    model: ProtoPNet,
    inputs: Tensor,
    labels: Tensor,
    n_steps: int = 300,
    last_layer_steps: int = 100,
    lr: float = 3e-3,
    cluster: float = 0.8,
    separation: float = 0.08,
    l1: float = 1e-4,
    batch_size: int | None = 128,
    seed: int = 0,
) -> PushResult:
    """Train a ProtoPNet in Chen et al.'s three stages; the model is trained in place.

    1. Features, add-on layers and prototypes: ``CE + cluster * Clst - separation * Sep``, where
       ``Clst`` is the mean over images of the smallest distance to a prototype of the image's class
       (pulls each image near one of its prototypes) and ``Sep`` the smallest distance to a
       prototype of another class (pushes the others away); the last layer stays fixed.
    2. Push: :func:`push_prototypes` projects each prototype onto a training patch of its class.
    3. The last layer alone: ``CE + l1 * |w|`` over the connections to other classes' prototypes,
       so each class relies on its own prototypes (the paper solves this convex step to optimum).

    Returns the push result: which training patch each prototype now is. The paper pushes
    every few epochs with a pretrained backbone; one push at the end suits a small model.

    References
    ----------
    [@chen2019this]
    """
    own = labels.view(-1, 1) == model.prototype_class.view(1, -1)  # (N, P)

    def stage1(r):
        d = model.distances(inputs[r]).flatten(2).min(-1).values  # (B, P)
        sim = torch.log((d + 1) / (d + model.eps))
        clst = torch.where(own[r], d, torch.inf).min(1).values.mean()
        sep = torch.where(own[r], torch.inf, d).min(1).values.mean()
        return F.cross_entropy(model.last(sim), labels[r]) + cluster * clst - separation * sep

    model.train()
    model.last.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    _adam(params, stage1, len(inputs), n_steps, lr, batch_size, seed)
    model.last.requires_grad_(True)
    model.eval()
    push = push_prototypes(model, inputs, labels)
    with torch.no_grad():
        sims = model.similarities(inputs)
    off = (1 - F.one_hot(model.prototype_class, model.last.out_features).float()).T  # (classes, P)
    _adam(model.last.parameters(), lambda r: F.cross_entropy(model.last(sims[r]), labels[r])
          + l1 * (model.last.weight * off).abs().sum(), len(inputs), last_layer_steps, lr, batch_size, seed + 1)
    return push


# --- neural additive models -----------------------------------------------------------------------------

class NeuralAdditiveModel(nn.Module):
    """``f(x) = bias + sum_j f_j(x_j)``, each ``f_j`` a 1-input ReLU MLP ``1 -> hidden -> hidden -> 1``.

    The ``d`` small networks are stored as stacked weights and run together with ``einsum``;
    :meth:`contributions` returns the ``(N, d)`` terms ``f_j(x_j)``, which are the explanation.
    """

    def __init__(self, n_features: int, hidden: int = 32, seed: int = 0):
        super().__init__()
        g = generator(seed)
        u = lambda *shape, fan_in: (torch.rand(*shape, generator=g) * 2 - 1) / math.sqrt(fan_in)  # noqa: E731
        d = n_features
        self.w1, self.b1 = nn.Parameter(u(d, hidden, fan_in=1)), nn.Parameter(u(d, hidden, fan_in=1))
        self.w2, self.b2 = nn.Parameter(u(d, hidden, hidden, fan_in=hidden)), nn.Parameter(u(d, hidden, fan_in=hidden))
        self.w3 = nn.Parameter(u(d, hidden, fan_in=hidden))
        self.bias = nn.Parameter(torch.zeros(()))

    def contributions(self, x: Tensor) -> Tensor:
        """``(N, d)``: each feature's shape function at the row's value."""
        h = torch.relu(x[..., None] * self.w1 + self.b1)  # (N, d, hidden)
        h = torch.relu(torch.einsum("ndh,dhk->ndk", h, self.w2) + self.b2)
        return torch.einsum("ndh,dh->nd", h, self.w3)

    def forward(self, x: Tensor) -> Tensor:
        return self.contributions(x).sum(1) + self.bias


def train_nam(
    inputs: Tensor,
    targets: Tensor,
    loss: str = "mse",
    hidden: int = 32,
    n_steps: int = 1000,
    lr: float = 1e-2,
    output_penalty: float = 1e-3,
    weight_decay: float = 1e-5,
    batch_size: int | None = 256,
    seed: int = 0,
) -> NeuralAdditiveModel:
    """A neural additive model: one small network per feature, trained jointly, outputs summed.

    Minimises ``loss(f(x), y) + output_penalty * mean_j f_j(x_j)² + weight_decay * |theta|²`` with
    Adam; ``loss`` is ``"mse"`` or ``"logistic"`` (``f`` is then a logit, ``y`` 0/1). The output
    penalty keeps each shape function small where it is not needed, so the ``f_j`` stay
    identifiable up to the constants that :meth:`NeuralAdditiveModel.contributions` leaves in them
    (centre them over the data before reading their levels). The paper's ExU units
    (``exp(w) * (x - b)`` with a capped ReLU) fit sharper shapes than these ReLU units; feature
    dropout and ensembling are left out.

    References
    ----------
    [@agarwal2021neural]
    """
    x, y = inputs.float(), targets.float()
    model = NeuralAdditiveModel(x.shape[1], hidden, seed)
    fit = F.mse_loss if loss == "mse" else F.binary_cross_entropy_with_logits

    def loss_at(r):
        c = model.contributions(x[r])
        penalty = output_penalty * (c ** 2).mean() + weight_decay * sum((p ** 2).sum() for p in model.parameters())
        return fit(c.sum(1) + model.bias, y[r]) + penalty

    _adam(model.parameters(), loss_at, len(x), n_steps, lr, batch_size, seed)
    return model.eval()
