"""Where things live: the content root, its content/, bib/ and store folders; KB_ROOT and KB_DATABASE_URL."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout", "find_root", "safe_child"]


@dataclass(frozen=True)
class Layout:
    """The folders of one knowledge base.

    >>> Layout(Path("/kb")).content
    PosixPath('/kb/content')
    """

    root: Path

    @property
    def content(self) -> Path:
        return self.root / "content"

    @property
    def bib(self) -> Path:
        return self.root / "bib"

    @property
    def store(self) -> Path:
        return self.root / ".kb"

    @property
    def database_url(self) -> str | None:
        """A SQLAlchemy URL from KB_DATABASE_URL, or None for the embedded SQLite store."""
        return os.environ.get("KB_DATABASE_URL") or None

    def relative(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The knowledge base root: ``root``, else ``$KB_ROOT``, else the current directory."""
    chosen = root or os.environ.get("KB_ROOT") or os.getcwd()
    return Path(chosen).expanduser().resolve()


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
