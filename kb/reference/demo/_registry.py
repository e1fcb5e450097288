"""The ``kb run`` registry: demo models, one ``Runner`` per method, and the figure/result helpers.

The one module of the demo package that imports matplotlib (headless, Agg backend); the runner
modules draw through its ``plt``. The package itself is imported only by ``kb run``/``kb reproduce``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pathlib
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .. import METHOD_REFERENCES, models  # noqa: E402

__all__ = ["Runner", "RUNNABLE", "list_runnable", "run_method", "demo_model", "reference_function", "TRAINERS"]

TRAINERS: dict[str, Callable[[], models.Demo]] = {
    "tabular-mlp": models.train_tabular_mlp,
    "shapes-cnn": models.train_shapes_cnn,
    "flipflop-gru": models.train_flipflop_gru,
    "induction-transformer": models.train_induction_transformer,
}


def demo_model(name: str, cache: dict | None = None) -> models.Demo:
    """Train demo ``name`` (seed 0), or take it from the caller's ``cache`` dict (no global cache)."""
    return _cached(cache, name, TRAINERS[name])


def _cached(cache: dict | None, name: str, build):
    """``build()`` once per ``cache`` dict (the same dict ``kb run`` keeps demo models in)."""
    if cache is not None and name in cache:
        return cache[name]
    value = build()
    if cache is not None:
        cache[name] = value
    return value


def reference_function(method: str) -> Callable:
    """``method``'s reference implementation, as ``kb.reference.METHOD_REFERENCES`` names it (``"module:function"``)."""
    module, function = METHOD_REFERENCES[method].split(":")
    return getattr(importlib.import_module(module), function)


@dataclasses.dataclass(frozen=True)
class Runner:
    """How ``kb run`` shows one method: the demo model it uses, what it shows, an optional package it needs."""

    fn: Callable[[pathlib.Path, dict | None], dict]
    model: str
    description: str
    requires: str | None = None


RUNNABLE: dict[str, Runner] = {}


def _runner(method: str, model: str, description: str, requires: str | None = None):
    def register(fn):
        RUNNABLE[method] = Runner(fn, model, description, requires)
        return fn
    return register


def list_runnable() -> list[dict]:
    """One dict per runnable method: ``method``, ``model``, ``description``, ``available`` (its optional package is installed)."""
    return [{"method": m, "model": r.model, "description": r.description,
             "available": r.requires is None or importlib.util.find_spec(r.requires) is not None}
            for m, r in sorted(RUNNABLE.items())]


def run_method(method_id: str, out_dir: pathlib.Path, cache: dict | None = None) -> dict:
    """Run ``method_id``'s reference implementation on its demo model.

    Writes ``out_dir/<method_id>.png`` and returns ``{"method", "figure", "reading", "metrics"}``;
    ``reading`` is one paragraph interpreting the figure from the computed metrics. ``cache`` is an
    optional dict in which trained demo models are kept between calls.
    """
    if method_id not in RUNNABLE:
        raise KeyError(f"no runnable demo for {method_id!r}; runnable: {', '.join(sorted(RUNNABLE))}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    try:  # demo models are tiny: one thread is as fast and immune to oversubscription
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            result = RUNNABLE[method_id].fn(out_dir, cache)
    finally:
        torch.set_num_threads(threads)
    return {"method": method_id, **result}


def _save(fig, out_dir: pathlib.Path, name: str) -> pathlib.Path:
    path = out_dir / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _result(fig, out_dir, name, reading, metrics) -> dict:
    metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    return {"figure": str(_save(fig, out_dir, name)), "reading": " ".join(reading.split()), "metrics": metrics}


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])

