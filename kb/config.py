"""Where things live: which knowledge base (--root, KB_ROOT, a parent folder, the bundled handbook), its
content/, bib/ and store folders, the templates, and KB_DATABASE_URL."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import KBError

__all__ = ["Layout", "locate", "find_root", "bundled_root", "templates_dir", "is_knowledge_base", "is_editor_artefact",
           "safe_child"]

PACKAGE = Path(__file__).resolve().parent
HANDBOOK = PACKAGE / "_handbook"  # where a wheel carries content/, bib/ and templates/ (see setup.py)
MARKER_KINDS = ("method", "concept", "goal", "architecture", "case_study", "tool", "topic", "path", "tutorial", "paper")


@dataclass(frozen=True)
class Layout:
    """The folders of one knowledge base, and how it was chosen.

    ``source`` is ``root`` (given as --root or to KnowledgeBase), ``KB_ROOT``, ``parent`` (found upward
    from the current folder) or ``bundled`` (the handbook inside the package, whose store lives in the
    user cache folder: nothing is written beside the installed package or in the current folder).

    >>> Layout(Path("/kb")).content
    PosixPath('/kb/content')
    >>> Layout(Path("/kb")).store
    PosixPath('/kb/.kb')
    """

    root: Path
    store_dir: Path | None = None
    source: str = "root"
    reason: str = ""

    @property
    def content(self) -> Path:
        return self.root / "content"

    @property
    def bib(self) -> Path:
        return self.root / "bib"

    @property
    def store(self) -> Path:
        return self.store_dir or self.root / ".kb"

    @property
    def sources(self) -> tuple[str, str]:
        """The folders whose files the store is built from (the content check's tops, kb.freshness)."""
        return str(self.content), str(self.bib)

    @property
    def bundled(self) -> bool:
        return self.source == "bundled"

    @property
    def database_url(self) -> str | None:
        """A SQLAlchemy URL from KB_DATABASE_URL, or None for the embedded SQLite store."""
        return os.environ.get("KB_DATABASE_URL") or None

    @property
    def database_url_redacted(self) -> str | None:
        """KB_DATABASE_URL with any password replaced by ``***`` (for printing).

        >>> import os; os.environ["KB_DATABASE_URL"] = "postgresql://kb:secret@db/kb"
        >>> Layout(Path("/kb")).database_url_redacted
        'postgresql://kb:***@db/kb'
        >>> del os.environ["KB_DATABASE_URL"]
        """
        import re

        url = self.database_url
        return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url) if url else None

    def relative(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def bundled_root() -> Path | None:
    """The handbook shipped with the package: ``kb/_handbook`` in an installed wheel, the source
    checkout itself when kb is imported from one (an editable install); None when neither holds it."""
    if (HANDBOOK / "content").is_dir():
        return HANDBOOK
    checkout = PACKAGE.parent
    if (checkout / "content").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout
    return None


def templates_dir() -> Path:
    """The jinja2 templates that render the handbook (shipped beside the bundled handbook)."""
    root = bundled_root()
    return (root or HANDBOOK) / "templates"


def is_knowledge_base(folder: Path) -> bool:
    """Whether ``folder`` looks like a knowledge base when searching upward: it holds ``content/`` with
    at least one record folder (``content/<kind>/``) or a ``bib/`` beside it. A stray ``content/`` of
    some other tool (a static-site generator's) is not taken for one."""
    content = folder / "content"
    if not content.is_dir():
        return False
    return (folder / "bib").is_dir() or any((content / kind).is_dir() for kind in MARKER_KINDS)


def _explicit(path: str | os.PathLike, source: str, label: str) -> Layout:
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise KBError(f"{label}{root} is not a folder")
    if not (root / "content").is_dir():
        raise KBError(f"{label}{root} is not a knowledge base: it has no content/ folder "
                      "(records live in content/<kind>/<id>.yaml)")
    reason = "given as the root (--root)" if source == "root" else "KB_ROOT names it"
    return Layout(root, source=source, reason=reason)


def user_cache_folder() -> Path:
    """The user cache folder of interp-kb, as platformdirs defines it.

    On Linux that is ``$XDG_CACHE_HOME/interp-kb`` (else ``~/.cache/interp-kb``), computed here directly:
    importing platformdirs costs ~40 ms, a fifth of a query's budget. Elsewhere platformdirs decides.
    """
    import sys

    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return Path(base) / "interp-kb"
    from platformdirs import user_cache_path

    return user_cache_path("interp-kb", appauthor=False)


def _bundled_store(root: Path) -> Path:
    """The bundled handbook's store: in the user cache folder, one per installed copy and version."""
    from . import __version__

    digest = hashlib.blake2b(str(root).encode(), digest_size=4).hexdigest()
    return user_cache_folder() / f"handbook-{__version__}-{digest}"


def locate(root: str | os.PathLike | Layout | None = None, cwd: str | os.PathLike | None = None) -> Layout:
    """Which knowledge base to use, and why.

    1. ``root`` (``--root``), else ``$KB_ROOT``: it must hold ``content/``, or this raises KBError;
    2. else the nearest folder upward from ``cwd`` (the current folder) that holds a knowledge base,
       as git finds ``.git``;
    3. else the handbook bundled in the installed package, its store in the user cache folder.
    """
    if isinstance(root, Layout):
        return root
    if root:
        return _explicit(root, "root", "")
    env = os.environ.get("KB_ROOT")
    if env:
        return _explicit(env, "KB_ROOT", "KB_ROOT=")
    start = Path(cwd or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if is_knowledge_base(folder):
            where = "the current folder" if folder == start else f"a parent of the current folder ({start})"
            return Layout(folder, source="parent", reason=f"{where} holds content/")
    bundled = bundled_root()
    if bundled is None:
        raise KBError(f"no knowledge base here: neither {start} nor a folder above it holds content/, and this "
                      "installation of interp-kb carries no bundled handbook; pass --root DIR or set KB_ROOT")
    return Layout(bundled, store_dir=_bundled_store(bundled), source="bundled",
                  reason=f"no folder from {start} upward holds content/: the handbook bundled with interp-kb")


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The knowledge base root chosen by :func:`locate`."""
    return locate(root).root


def is_editor_artefact(name: str) -> bool:
    """An editor's lock, autosave or backup file, or a hidden file: never a record or a bibliography.

    >>> [is_editor_artefact(n) for n in (".#pca.yaml", "#pca.yaml#", "pca.yaml~", "._pca.yaml", "pca.yaml")]
    [True, True, True, True, False]
    """
    return name.startswith((".", "#")) or name.endswith("~")


def safe_child(folder: Path, name: str) -> Path:
    """``folder / name``, refusing any name that would land outside ``folder``.

    >>> safe_child(Path("/out"), "method/pca.html")
    PosixPath('/out/method/pca.html')
    >>> safe_child(Path("/out"), "../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: '../etc/passwd' would escape /out
    """
    base = Path(os.path.abspath(folder))
    target = Path(os.path.abspath(base / name))
    if name.startswith("/") or (target != base and base not in target.parents):
        raise ValueError(f"{name!r} would escape {folder}")
    return target
