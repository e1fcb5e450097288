"""interp-kb: a knowledge base of neural-network interpretability that answers questions.

>>> from kb import KnowledgeBase
"""
from .api import KnowledgeBase
from .errors import KBError, Problem

__all__ = ["KnowledgeBase", "KBError", "Problem"]
__version__ = "0.1.0"
