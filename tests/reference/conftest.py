"""Fixtures for the reference-implementation tests: demo models trained once per session."""

from __future__ import annotations

import pytest
import torch

from kb.reference import models


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a reference test that takes more than a few seconds")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models run as fast on one thread, and one thread is immune to oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_cache() -> dict:
    """Trained demo models shared by the session (kb.reference.demo accepts this dict as its cache)."""
    return {}


def _cached(cache: dict, name: str, train) -> models.Demo:
    if name not in cache:  # not dict.setdefault: that would train again every time
        cache[name] = train()
    return cache[name]


@pytest.fixture(scope="session")
def tabular(demo_cache) -> models.Demo:
    return _cached(demo_cache, "tabular-mlp", models.train_tabular_mlp)


@pytest.fixture(scope="session")
def shapes(demo_cache) -> models.Demo:
    return _cached(demo_cache, "shapes-cnn", models.train_shapes_cnn)


@pytest.fixture(scope="session")
def flipflop(demo_cache) -> models.Demo:
    return _cached(demo_cache, "flipflop-gru", models.train_flipflop_gru)


@pytest.fixture(scope="session")
def induction(demo_cache) -> models.Demo:
    return _cached(demo_cache, "induction-transformer", models.train_induction_transformer)


@pytest.fixture(scope="session")
def induction_mlp(demo_cache, induction) -> models.Demo:
    """The induction transformer with MLPs and a final LayerNorm added and fine-tuned (for transcoders)."""
    return _cached(demo_cache, "induction-mlp-transformer",
                   lambda: models.train_induction_mlp_transformer(induction))


@pytest.fixture(scope="session")
def induction_transcoders(demo_cache, induction_mlp):
    """``(per_layer, clt, (x_test, y_test))``: transcoders (64 latents) of both MLPs of ``induction_mlp``,
    trained as the ``kb run transcoders`` demo trains them (same cache entry)."""
    from kb.reference.transcoders import mlp_io, train_cross_layer_transcoder, train_transcoder

    def fit():
        mlps = ["blocks.0.mlp", "blocks.1.mlp"]
        x, y = mlp_io(induction_mlp.model, models.make_induction_batch(128, 24, seed=123), mlps)
        test = mlp_io(induction_mlp.model, models.make_induction_batch(32, 24, seed=321), mlps)
        per_layer = [train_transcoder(x[l], y[l], 64, l1_coeff=0.03, n_steps=400) for l in range(2)]
        return per_layer, train_cross_layer_transcoder(x, y, 64, l1_coeff=0.03, n_steps=400), test

    if "induction-mlp-transcoders" not in demo_cache:
        demo_cache["induction-mlp-transcoders"] = fit()
    return demo_cache["induction-mlp-transcoders"]


@pytest.fixture(scope="session")
def runs(induction):
    """The induction model with clean repeated sequences, a corrupted copy (first half scrambled),
    and the metric: mean log-probability of the correct token over the predictable second half."""
    tokens, half = induction.inputs, induction.info["half"]
    g = torch.Generator().manual_seed(5)
    corrupted = tokens.clone()
    corrupted[:, :half] = torch.rand(len(tokens), 32, generator=g).argsort(1)[:, :half]

    def logprob(logits):
        return logits[:, half - 1:-1].log_softmax(-1).gather(-1, tokens[:, half:, None]).mean()

    return induction.model, tokens, corrupted, logprob, half


@pytest.fixture(params=[0, 1], ids=["seed0", "seed1"])
def seed(request) -> int:
    return request.param


def _no_hooks(model: torch.nn.Module) -> bool:
    """True when no forward, forward-pre or backward hook is left on any submodule."""
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in model.modules())


@pytest.fixture()
def no_hooks():
    """``no_hooks(model)``: True when every hook registered on ``model`` has been removed."""
    return _no_hooks
