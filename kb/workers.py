"""How many processes to spread a handbook's pages over (rendering them, checking their links)."""
from __future__ import annotations

from .errors import KBError

__all__ = ["workers_for", "PARALLEL_FROM"]

PARALLEL_FROM = 400  # pages; below this a second process costs more than it saves


def workers_for(requested: int | None, pages: int) -> int:
    """Processes to write (or check) the handbook's pages with: ``requested``, else $KB_RENDER_WORKERS,
    else one per core (at most 8) for a large handbook; 1 where processes cannot be forked (they
    inherit what the parent has read)."""
    import multiprocessing
    import os

    if requested is None:
        env = os.environ.get("KB_RENDER_WORKERS", "").strip()
        if env:
            try:
                requested = int(env)
            except ValueError:
                raise KBError(f"KB_RENDER_WORKERS must be a whole number, not {env!r}") from None
        else:
            requested = min(os.cpu_count() or 1, 8) if pages >= PARALLEL_FROM else 1
    if requested > 1 and "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, pages))
