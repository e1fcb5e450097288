"""Landmark findings reproduced at small scale on a CPU, one module per finding.

Each module states the published claim (``CLAIM``), exposes ``run(seed=0, **config) -> dict`` that
measures it and ``figure(result, path)`` that draws it, and a cheaper ``QUICK`` config the tests use.
A case study's ``reproduction.run`` names its module's ``run`` (``kb.reference.reproductions.<module>:run``);
``kb reproduce CASE`` calls :func:`reproduce` with it. Importing this package imports torch.

Every ``run`` returns a JSON-serialisable dict::

    {"claim": str, "setup": str, "measured": {name: number}, "headline": name,
     "tolerance": str, "passed": bool, "curves": {...}}

``tolerance`` says, with the numbers, what ``passed`` checks; ``curves`` holds what the figure plots.
"""

from __future__ import annotations

import importlib
import pathlib
import re
import time

import torch

__all__ = ["reproduce", "resolve", "MODULES"]

MODULES = (
    "superposition", "sanity_checks", "neural_collapse", "double_descent", "sae_features", "logit_lens",
    "refusal_direction", "lottery_ticket", "grokking", "flip_flop", "induction_heads",
)

_DOTTED = re.compile(r"kb\.reference\.reproductions\.([a-z_][a-z0-9_]*):run")


def resolve(dotted: str):
    """The ``(run, figure)`` functions named by ``kb.reference.reproductions.<module>:run``.

    Only modules of this package may be named, so content can never make ``kb reproduce`` import
    anything else.
    """
    match = _DOTTED.fullmatch(dotted.strip())
    if match is None or match.group(1) not in MODULES:
        raise ValueError(f"{dotted!r} is not a reproduction (kb.reference.reproductions.<module>:run; "
                         f"modules: {', '.join(MODULES)})")
    module = importlib.import_module(f"{__name__}.{match.group(1)}")
    return module.run, module.figure


def reproduce(dotted: str, out_dir: str | pathlib.Path | None = None, seed: int = 0, name: str | None = None) -> dict:
    """Run the reproduction ``dotted`` with ``seed``; write its figure to ``out_dir/<name>.png`` if asked.

    Returns the module's result dict plus ``seconds`` (wall time of ``run``) and ``figure`` (the
    path written, or None). One torch thread: the models are tiny, and one thread is as fast and
    immune to oversubscription; the caller's global RNG state is left as it was.
    """
    run, figure = resolve(dotted)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            start = time.perf_counter()
            result = run(seed=seed)
            result["seconds"] = round(time.perf_counter() - start, 2)
    finally:
        torch.set_num_threads(threads)
    result["figure"] = None
    if out_dir is not None:
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name or dotted.rsplit('.', 1)[1].split(':')[0]}.png"
        figure(result, path)
        result["figure"] = str(path)
    return result
