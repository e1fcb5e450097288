"""Shared pieces of the reproductions: the result dict and a headless matplotlib figure."""

from __future__ import annotations

import contextlib
import pathlib
from typing import Iterator

__all__ = ["result", "new_figure"]


def _plain(value):
    """Round floats and turn tensors/tuples into lists, so the result is JSON-serialisable."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def result(claim: str, setup: str, measured: dict, headline: str, tolerance: str, passed: bool,
           curves: dict | None = None) -> dict:
    """The dict every ``run`` returns (see the package docstring)."""
    assert headline in measured, headline
    return {"claim": " ".join(claim.split()), "setup": " ".join(setup.split()), "measured": _plain(measured),
            "headline": headline, "tolerance": " ".join(tolerance.split()), "passed": bool(passed),
            "curves": _plain(curves or {})}


@contextlib.contextmanager
def new_figure(path: str | pathlib.Path, ncols: int = 1, width: float = 5.0, height: float = 3.2) -> Iterator:
    """A matplotlib figure with ``ncols`` axes (Agg backend, imported here only), saved to ``path`` on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height))
    try:
        yield fig, axes
        fig.tight_layout()
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
