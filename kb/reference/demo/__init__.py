"""``kb run METHOD``: each reference implementation on a fitting demo model -> a figure and a reading.

One module per demo model or family registers its runners in ``RUNNABLE`` (see ``_registry``); the
demo package is the only part of ``kb.reference`` that imports matplotlib (in ``_registry``, Agg backend).
"""

from __future__ import annotations

from ._registry import RUNNABLE, TRAINERS, Runner, demo_model, list_runnable, run_method  # noqa: F401
# importing the runner modules registers their runners
from . import (by_design, cnn, data_attribution, evaluation, global_effects, landscape, llm,  # noqa: F401
               recurrent, tabular, tabular_blackbox, transformer)

__all__ = ["Runner", "RUNNABLE", "list_runnable", "run_method", "demo_model"]
