"""Problems found in content, and the one exception the library raises to its callers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Problem", "KBError", "NotFound", "StoreMissing", "CODES"]

# Every code a Problem can carry, with the fix a user should make. tests/test_docs.py checks that
# each code emitted anywhere is listed here, so the docs never lag behind the checks.
CODES: dict[str, str] = {
    "yaml-syntax": "The file is not valid YAML. Fix the syntax at the line shown.",
    "yaml-tag": "YAML tags that construct objects (!!python/...) are refused. Use plain values.",
    "yaml-duplicate-key": "A key appears twice in one mapping. Keep one of them.",
    "yaml-alias": "Anchors and aliases (&name, *name) are not allowed in records; write the value out.",
    "too-deep": "Records may nest lists and mappings at most 200 levels deep; flatten the value.",
    "too-large": "A record file may hold at most 1 MB; split the text or link to a longer document.",
    "not-a-mapping": "A record file must hold one YAML mapping (key: value pairs).",
    "missing-field": "A required field is absent. Add it.",
    "unknown-field": "The field is not part of this kind's schema. Remove it or fix its spelling (see `kb schema`).",
    "wrong-type": "The field's value has the wrong type or is not one of the allowed values.",
    "bad-id": "Ids are slugs: lowercase letters and digits separated by single hyphens.",
    "id-mismatch": "The record's id must equal its file name without .yaml.",
    "unknown-kind": "Records live in content/<kind>/ where kind is one of the record kinds.",
    "duplicate-id": "Two records of the same kind share an id. Rename one.",
    "bib-parse": "The BibTeX entry does not parse. Check braces, commas and the entry type.",
    "bib-duplicate-key": "Two BibTeX entries share a citekey. Keep one.",
    "bib-missing-locator": "Every paper needs a doi, an eprint (arXiv id) or a url field.",
    "bib-missing-field": "The BibTeX entry lacks a required field (title, author, year).",
    "bib-bad-key": "Citekeys are lowercase letters, digits and hyphens.",
    "dangling-ref": "The link names a record that does not exist. Fix the id or add the record.",
    "wrong-kind-ref": "The link names a record of a kind this field does not accept.",
    "ambiguous-ref": "A bare id matches records of several kinds. Write it as kind:id.",
    "unknown-citekey": "The citekey is not in bib/*.bib. Add the entry or fix the key.",
    "paper-note-without-entry": "content/paper/<key>.yaml needs a BibTeX entry with the same citekey.",
    "prerequisite-cycle": "Prerequisites form a cycle. Remove one of the edges named.",
    "reference-unresolved": "`reference:` must name a top-level function in kb.reference, as kb.reference.<module>:<function>.",
    "reproduction-missing": "A case study's reproduction.test must name a test function that exists (path::function), and its reproduction.run a function of kb.reference.reproductions (kb.reference.reproductions.<module>:run).",
    "reference-missing": "The method has no reference implementation yet (reference: null).",
    "orphan": "No other record links to this one. Link it from a goal, path, method or see_also.",
    "uncited-paper": "No record cites this BibTeX entry.",
    "unsafe-url": "A link, image or url may use http(s), mailto or a relative address; javascript:, data: and other schemes could run script in readers' browsers.",
    "unsafe-html": "Raw active HTML (script, svg, iframe, event handlers such as onload=) is refused in record text and BibTeX fields; put markup inside `code` or describe it in words.",
    "bad-math": "A $…$ or $$…$$ formula is not TeX that the renderer can turn into MathML (an unclosed brace, an unknown command); fix it, escape a literal dollar as \\$, or put the text inside `code`.",
    "skipped-file": "An editor's lock or backup file (.#name.yaml, name.yaml~), or a link to nothing, was skipped; finish editing or delete it.",
    "broken-link": "A link in the rendered output points to a file or #anchor that does not exist.",
}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the content, located as precisely as we can.

    Examples
    --------
    >>> Problem("dangling-ref", "content/method/x.yaml", 3, "method:x", "no such record").format()
    'content/method/x.yaml:3: error: [dangling-ref] no such record'
    """

    code: str
    file: str | None
    line: int | None
    ref: str | None
    message: str
    severity: str = field(default="error")

    def format(self) -> str:
        where = self.file or "<content>"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.severity}: [{self.code}] {self.message}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("severity")
        return data


class KBError(Exception):
    """A failure the user can fix; its message says how. The CLI prints it without a traceback.

    ``param`` names the parameter at fault (``goal``, ``to``, ``depth``...) in the library's words; the
    message itself names no command-line option, so HTTP and MCP answers can carry it unchanged and
    the CLI adds its option name (``--goal``).
    """

    def __init__(self, message: str, problems: list[Problem] | None = None, param: str | None = None):
        super().__init__(message)
        self.problems = problems or []
        self.param = param

    code = "bad-request"

    def to_dict(self) -> dict:
        """The one error shape of HTTP and MCP answers (kb.contract.ErrorBody).

        >>> NotFound("no record 'method:x'.", param="ref").to_dict()
        {'detail': "no record 'method:x'.", 'code': 'not-found', 'param': 'ref'}
        """
        return {"detail": str(self), "code": self.code, "param": self.param}


class NotFound(KBError):
    """The record (or other thing) asked for does not exist; HTTP answers 404."""

    code = "not-found"


class StoreMissing(KBError):
    """No store has been built yet; HTTP answers 503 (without the server's paths)."""

    code = "not-built"
