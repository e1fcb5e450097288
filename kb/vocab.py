"""The closed vocabularies records use, as plain tuples: the schema types fields with them and the
query checks user facets against them, without importing pydantic on the query path."""

__all__ = ["LEVELS", "MODALITIES", "ACCESS", "ACCESS_RANK", "SCOPES", "COST_LEVELS", "AUDIENCES"]

LEVELS = ("beginner", "intermediate", "advanced")
MODALITIES = ("image", "text", "tabular", "sequence", "audio", "graph", "game-state", "video", "any")
ACCESS = ("black-box", "gradients", "activations", "weights")
# how much of the model each access level opens, least first: a method needing more than the
# user has is ruled out by the query
ACCESS_RANK = {"black-box": 0, "activations": 1, "gradients": 2, "weights": 3}
SCOPES = ("local", "global", "both")
COST_LEVELS = ("low", "medium", "high")
AUDIENCES = ("beginner", "practitioner", "researcher", "mechanistic")
