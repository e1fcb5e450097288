"""The closed vocabularies records use, as plain tuples: the schema types fields with them and the
query checks user facets against them, without importing pydantic on the query path."""
from __future__ import annotations


__all__ = ["LEVELS", "MODALITIES", "ACCESS", "ACCESS_RANK", "SCOPES", "COST_LEVELS", "AUDIENCES", "LEVEL_RANK",
           "level_rank"]

LEVELS = ("beginner", "intermediate", "advanced")
LEVEL_RANK = {level: i for i, level in enumerate(LEVELS)}  # the reading order: beginner first
MODALITIES = ("image", "text", "tabular", "sequence", "audio", "graph", "game-state", "video", "any")
ACCESS = ("black-box", "gradients", "activations", "weights")
# how much of the model each access level opens, least first: a method needing more than the
# user has is ruled out by the query
ACCESS_RANK = {"black-box": 0, "activations": 1, "gradients": 2, "weights": 3}
SCOPES = ("local", "global", "both")
COST_LEVELS = ("low", "medium", "high")
AUDIENCES = ("beginner", "practitioner", "researcher", "mechanistic")


def level_rank(level: str | None) -> int:
    """Where a level stands in the reading order; a record without one (a paper) ranks as intermediate.

    >>> level_rank("beginner"), level_rank("advanced"), level_rank(None)
    (0, 2, 1)
    """
    return LEVEL_RANK.get(level, LEVEL_RANK["intermediate"])
