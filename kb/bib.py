"""BibTeX in (bibtexparser 2.x, every failed block a Problem with file:line) and BibTeX out for reading lists."""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import Problem
from .refs import is_citekey

__all__ = ["Paper", "load_bib", "to_bibtex", "clean_tex"]

# bibtexparser logs each failed block itself; we report them as Problems instead.
logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)

_ACCENTS = {
    r'\"': "\u0308", r"\'": "\u0301", r"\`": "\u0300", r"\^": "\u0302", r"\~": "\u0303",
    r"\c": "\u0327", r"\v": "\u030c", r"\=": "\u0304", r"\.": "\u0307", r"\u": "\u0306", r"\H": "\u030b",
}
_SPECIAL = {r"\ss": "ß", r"\o": "ø", r"\O": "Ø", r"\ae": "æ", r"\AE": "Æ", r"\aa": "å", r"\AA": "Å",
            r"\l": "ł", r"\L": "Ł", r"\i": "ı", r"\&": "&", r"\%": "%", r"\_": "_", r"\$": "$", "--": "–", "~": " "}


def clean_tex(text: str) -> str:
    """Plain text from a BibTeX value: accents decoded, braces dropped.

    >>> clean_tex(r"Merri{\\"e}nboer and Koutn{\\'\\i}k")
    'Merriënboer and Koutník'
    >>> clean_tex(r"Harvard Journal of Law \\& Technology"), clean_tex(r"Stra{\\ss}e 50\\% off")
    ('Harvard Journal of Law & Technology', 'Straße 50% off')
    """
    import unicodedata

    text = text.replace("``", "\u201c").replace("''", "\u201d")
    if not any(c in text for c in "\\{}~-"):
        return " ".join(text.split())

    def accent(m: re.Match) -> str:
        letter = m.group(2).replace(r"\i", "i")
        return unicodedata.normalize("NFC", letter + _ACCENTS[m.group(1)])

    text = re.sub(r"(\\[\"'`^~cv=.uH])\s*\{?\s*(\\i|[A-Za-z])\s*\}?", accent, text)
    for tex, plain in _SPECIAL.items():
        if not tex.startswith("\\"):
            text = text.replace(tex, plain)
        elif tex[1:].isalpha():  # a control word (\ss) ends at the spaces after it, as in TeX
            text = re.sub(re.escape(tex) + r"(?![A-Za-z])\s*(\{\})?", plain, text)
        else:  # a control symbol (\&, \%) takes no space with it: "Law \& Technology" keeps both
            text = re.sub(re.escape(tex) + r"(\{\})?", plain, text)
    text = text.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Paper:
    """One BibTeX entry, cleaned for display; ``fields`` keeps the raw values for export."""

    id: str
    entry_type: str
    title: str
    authors: list[str]
    year: int | None
    venue: str
    doi: str | None
    arxiv: str | None
    url: str | None
    file: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"paper:{self.id}"

    @property
    def link(self) -> str | None:
        """The best stable link: DOI, else arXiv, else an http(s) URL (never a ``javascript:`` one)."""
        from urllib.parse import quote

        if self.doi:
            return "https://doi.org/" + quote(self.doi, safe="/:;()._-")
        if self.arxiv:
            return "https://arxiv.org/abs/" + quote(self.arxiv, safe="/._-")
        if self.url and self.url.strip().lower().startswith(("http://", "https://")):
            return self.url.strip()
        return None

    def short_authors(self) -> str:
        """``Kim``, ``Kim and Wattenberg`` or ``Kim et al.``: surnames as a citation shows them."""
        names = [a.split(",")[0].strip() if "," in a else (a.split() or [""])[-1] for a in self.authors] or ["Anon."]
        return names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al."

    def citation(self) -> str:
        """A one-line reference, e.g. ``Kim et al. (2018). Title. Venue.``"""
        who = self.short_authors()
        venue = f" {self.venue}." if self.venue else ""
        return f"{who} ({self.year}). {self.title}.{venue}"

    def to_dict(self) -> dict:
        return asdict(self)


def _arxiv_id(values: dict[str, str]) -> str | None:
    eprint = values.get("eprint", "")
    if eprint and (values.get("archiveprefix", "arxiv").lower() == "arxiv"):
        return eprint.removeprefix("arXiv:").strip()
    m = re.search(r"arxiv\.org/(?:abs|pdf)/([0-9]{4}\.[0-9]{4,5}|[a-z\-]+/[0-9]{7})", values.get("url", ""))
    if m:
        return m.group(1)
    m = re.search(r"arXiv:\s*([0-9]{4}\.[0-9]{4,5})", values.get("journal", "") + values.get("note", ""))
    return m.group(1) if m else None


def _paper(entry, rel: str) -> tuple[Paper | None, list[Problem]]:
    values = {k.lower(): str(v.value) for k, v in entry.fields_dict.items()}
    line = entry.start_line + 1
    problems = []
    missing = [f for f in ("title", "author", "year") if not values.get(f, "").strip()]
    if missing:
        problems.append(Problem("bib-missing-field", rel, line, f"paper:{entry.key}",
                                f"entry {entry.key!r} lacks {', '.join(missing)}"))
    doi = values.get("doi", "").strip().removeprefix("https://doi.org/") or None
    arxiv = _arxiv_id(values)
    url = values.get("url", "").strip() or None
    if not (doi or arxiv or url):
        problems.append(Problem("bib-missing-locator", rel, line, f"paper:{entry.key}",
                                f"entry {entry.key!r} has no doi, eprint (arXiv id) or url; add one so readers can find it"))
    if problems:
        return None, problems
    year_match = re.search(r"\d{4}", values["year"])
    venue = values.get("journal") or values.get("booktitle") or values.get("howpublished") or values.get("publisher") or ""
    if not venue and arxiv:
        venue = f"arXiv:{arxiv}"
    authors = [clean_tex(a) for a in re.split(r"\s+and\s+", values["author"]) if a.strip()]
    return Paper(entry.key, entry.entry_type.lower(), clean_tex(values["title"]), authors,
                 int(year_match.group()) if year_match else None, clean_tex(venue), doi, arxiv, url,
                 rel, line, values), []


def load_bib(bib_dir: Path, relative_to: Path, declared: set[str] | None = None) -> tuple[list[Paper], list[Problem]]:
    """Parse every ``bib_dir/*.bib``; return papers and all problems (parse errors, duplicates, missing locators).

    ``declared``, when given, receives the citekey of every entry written, even one that failed,
    so citations of a broken entry are not reported a second time as unknown.
    """
    declared = set() if declared is None else declared
    import bibtexparser

    papers: list[Paper] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in sorted(bib_dir.glob("*.bib")) if bib_dir.is_dir() else []:
        rel = str(path.relative_to(relative_to))
        if path.name.startswith((".", "#")) or not path.is_file():  # an editor's lock file, a link to nothing
            problems.append(Problem("skipped-file", rel, None, None, "skipped: an editor's lock file or a link to nothing",
                                    "warning"))
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem("bib-parse", rel, None, None, f"cannot read the file: {exc}"))
            continue
        try:
            library = bibtexparser.parse_string(text)
        except Exception as exc:  # the parser's own failures must not become tracebacks
            problems.append(Problem("bib-parse", rel, None, None, f"the file does not parse: {exc}"))
            continue
        for block in library.failed_blocks:
            line = (block.start_line or 0) + 1
            if type(block).__name__ == "DuplicateBlockKeyBlock":
                problems.append(Problem("bib-duplicate-key", rel, line, f"paper:{block.key}",
                                        f"citekey {block.key!r} is defined twice in this file"))
            else:
                m = re.match(r"\s*@\w+\s*[{(]\s*([^,\s]+)\s*,", block.raw or "")
                if m:
                    declared.add(m.group(1))
                first = block.raw.strip().splitlines()[0][:60] if block.raw.strip() else ""
                problems.append(Problem("bib-parse", rel, line, None,
                                        f"entry does not parse: {first!r}; check its braces, commas and quotes"))
        for entry in library.entries:
            declared.add(entry.key)
            if not is_citekey(entry.key):
                problems.append(Problem("bib-bad-key", rel, entry.start_line + 1, None,
                                        f"citekey {entry.key!r} must be lowercase letters, digits, '-' or '_'"))
                continue
            if entry.key in seen:
                problems.append(Problem("bib-duplicate-key", rel, entry.start_line + 1, f"paper:{entry.key}",
                                        f"citekey {entry.key!r} is also defined in {seen[entry.key]}"))
                continue
            paper, found = _paper(entry, rel)
            problems.extend(found)
            if paper:
                seen[entry.key] = f"{rel}:{paper.line}"
                papers.append(paper)
    return papers, problems


def to_bibtex(papers: list[Paper]) -> str:
    """BibTeX text for ``papers``, in the given order, with their original field values."""
    out = []
    for p in papers:
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in p.fields.items())
        out.append(f"@{p.entry_type}{{{p.id},\n{body}\n}}\n")
    return "\n".join(out)
