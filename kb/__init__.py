"""interp-kb: a knowledge base of neural-network interpretability that answers questions.

>>> from kb import KnowledgeBase
"""
__all__ = ["KnowledgeBase", "KBError", "Problem"]
__version__ = "0.1.0"


def __getattr__(name):
    # imported on first use, so the ``kb`` launcher (kb.launch) starts before the library's imports
    if name == "KnowledgeBase":
        from .api import KnowledgeBase as value
    elif name in ("KBError", "Problem"):
        from . import errors

        value = getattr(errors, name)
    else:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    globals()[name] = value
    return value
